"""What travels between the services: the messages (``messages``, ``message_columns``),
their binary frames (``frames``), the queue names (``routing``) and each broker user's
permissions over them (``permissions``).  No broker connection here: pure data."""
