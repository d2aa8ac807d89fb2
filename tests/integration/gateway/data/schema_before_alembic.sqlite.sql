-- The gateway's schema as create_all made it before Alembic (commit 4ea718b), sqlite.

CREATE TABLE users (
	id INTEGER NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (username)
);

CREATE TABLE api_tokens (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(16) NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT, 
	revoked_at FLOAT, 
	last_used_at FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (token_hash)
);

CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE trainings (
	id VARCHAR(36) NOT NULL, 
	owner_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	config JSON NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	generations INTEGER NOT NULL, 
	best_fitness FLOAT, 
	finish_reason VARCHAR(32), 
	error TEXT, 
	waiting_reason TEXT, 
	handoff_id VARCHAR(64), 
	best_genome JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(owner_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_trainings_owner_created ON trainings (owner_id, created_at);

CREATE TABLE generations (
	training_id VARCHAR(36) NOT NULL, 
	generation INTEGER NOT NULL, 
	best_fitness FLOAT NOT NULL, 
	mean_fitness FLOAT NOT NULL, 
	species INTEGER NOT NULL, 
	population INTEGER NOT NULL, 
	evaluations_per_s FLOAT NOT NULL, 
	best_genome_key BIGINT NOT NULL, 
	received_at FLOAT NOT NULL, 
	PRIMARY KEY (training_id, generation), 
	FOREIGN KEY(training_id) REFERENCES trainings (id) ON DELETE CASCADE
);

CREATE TABLE saved_genomes (
	training_id VARCHAR(36) NOT NULL, 
	generation INTEGER NOT NULL, 
	generation_best JSON, 
	best_so_far JSON, 
	received_at FLOAT NOT NULL, 
	PRIMARY KEY (training_id, generation), 
	FOREIGN KEY(training_id) REFERENCES trainings (id) ON DELETE CASCADE
);
