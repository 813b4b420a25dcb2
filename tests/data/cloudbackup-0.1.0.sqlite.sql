-- A database made by cloudbackup 0.1.0 (schema_version 1, before Alembic), frozen: tests adopt it.
-- Made once by 0.1.0's own code, through its API on SQLite, dumped with sqlite3's iterdump.
-- Rows: a project, a backed-up cluster with two completed scheduled snapshots, a completed restore
-- job onto a second cluster, an organization API key (private key in tests/unit/test_migrations.py).
BEGIN TRANSACTION;
CREATE TABLE api_keys (
	public_key VARCHAR(32) NOT NULL, 
	ha1_md5 VARCHAR(32) NOT NULL, 
	ha1_sha256 VARCHAR(64) NOT NULL, 
	project_id VARCHAR(24), 
	read_only BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (public_key)
);
INSERT INTO "api_keys" VALUES('jjgcvpai','1056a00ac985e5cff8480f08794f2dad','ba52def3be82d908dc338a3ee44bdcff47bf38d4df517fd34ee1044f71cb87ca',NULL,0,'2026-12-01 03:05:44.134495');
CREATE TABLE clusters (
	id VARCHAR(24) NOT NULL, 
	project_id VARCHAR(24) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	provider_name VARCHAR(16) NOT NULL, 
	instance_size VARCHAR(8) NOT NULL, 
	cluster_type VARCHAR(16) NOT NULL, 
	regions JSON NOT NULL, 
	disk_size_gb INTEGER NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	backup_method VARCHAR(32), 
	reference_time DATETIME, 
	next_due_at DATETIME, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_clusters_project_name UNIQUE (project_id, name), 
	FOREIGN KEY(project_id) REFERENCES projects (id)
);
INSERT INTO "clusters" VALUES('6b0e3988fd5473ad1b720623','6b0e3988fd5473ad1b720622','rs1','AZURE','M10','REPLICASET','{"eastus2": {"priority": 7, "electableNodes": 1}}',1,'IDLE','CLOUD_PROVIDER_SNAPSHOTS','2026-12-01 03:05:44.000000','2026-12-03 03:05:44.000000','2026-12-01 03:05:44.000000');
INSERT INTO "clusters" VALUES('6b0e3988fd5473ad1b720624','6b0e3988fd5473ad1b720622','dst','AZURE','M10','REPLICASET','{"eastus2": {"priority": 7, "electableNodes": 1}}',1,'IDLE',NULL,NULL,NULL,'2026-12-01 03:05:44.000000');
CREATE TABLE projects (
	id VARCHAR(24) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "projects" VALUES('6b0e3988fd5473ad1b720622','legacy','2026-12-01 03:05:44.000000');
CREATE TABLE restore_jobs (
	id VARCHAR(24) NOT NULL, 
	project_id VARCHAR(24) NOT NULL, 
	cluster_id VARCHAR(24) NOT NULL, 
	snapshot_id VARCHAR(24) NOT NULL, 
	target_project_id VARCHAR(24) NOT NULL, 
	target_cluster_id VARCHAR(24), 
	target_cluster_name VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	operations JSON NOT NULL, 
	failure_reason TEXT, 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(cluster_id) REFERENCES clusters (id)
);
INSERT INTO "restore_jobs" VALUES('6b0e3988fd5473ad1b720627','6b0e3988fd5473ad1b720622','6b0e3988fd5473ad1b720623','6b0e3988fd5473ad1b720626','6b0e3988fd5473ad1b720622','6b0e3988fd5473ad1b720624','dst','completed','[{"volumeId": 2, "region": "eastus2", "volumeHandle": "volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720624/member-0.img", "token": "restore:4eb6809f39a3486891fadc7418294a43", "state": "succeeded", "checksum": "sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525"}]',NULL,'2026-12-02 04:05:44.000000','2026-12-02 04:05:44.000000');
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
CREATE TABLE settings (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "settings" VALUES('manual_clock_now','2026-12-02T04:05:44+00:00');
INSERT INTO "settings" VALUES('digest_nonce_key','63913b9033ffe9089fc72228477c2c4bd8349b1caacee99b5f118dc7143743b7');
CREATE TABLE snapshots (
	id VARCHAR(24) NOT NULL, 
	cluster_id VARCHAR(24) NOT NULL, 
	project_id VARCHAR(24) NOT NULL, 
	snapshot_type VARCHAR(16) NOT NULL, 
	slot_time DATETIME, 
	status VARCHAR(16) NOT NULL, 
	region VARCHAR(64) NOT NULL, 
	volume_handle VARCHAR(1024), 
	op_token TEXT, 
	handle VARCHAR(1024), 
	storage_size_bytes BIGINT, 
	disk_size_bytes BIGINT, 
	checksum VARCHAR(128), 
	failure_reason TEXT, 
	description VARCHAR(256), 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_snapshots_slot UNIQUE (cluster_id, slot_time), 
	FOREIGN KEY(cluster_id) REFERENCES clusters (id)
);
INSERT INTO "snapshots" VALUES('6b0e3988fd5473ad1b720625','6b0e3988fd5473ad1b720623','6b0e3988fd5473ad1b720622','scheduled','2026-12-01 03:05:44.000000','completed','eastus2','volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img','snapshot:eastus2/6b0e3988fd5473ad1b720625','snapshots/eastus2/6b0e3988fd5473ad1b720625.snap',0,1073741824,'sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525',NULL,NULL,'2026-12-01 03:05:44.000000','2026-12-01 03:05:44.000000');
INSERT INTO "snapshots" VALUES('6b0e3988fd5473ad1b720626','6b0e3988fd5473ad1b720623','6b0e3988fd5473ad1b720622','scheduled','2026-12-02 03:05:44.000000','completed','eastus2','volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img','snapshot:eastus2/6b0e3988fd5473ad1b720626','snapshots/eastus2/6b0e3988fd5473ad1b720626.snap',0,1073741824,'sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525',NULL,NULL,'2026-12-02 03:05:44.000000','2026-12-02 03:05:44.000000');
CREATE TABLE volumes (
	id INTEGER NOT NULL, 
	cluster_id VARCHAR(24) NOT NULL, 
	region VARCHAR(64) NOT NULL, 
	member INTEGER NOT NULL, 
	handle VARCHAR(1024), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_volumes_member UNIQUE (cluster_id, region, member), 
	FOREIGN KEY(cluster_id) REFERENCES clusters (id)
);
INSERT INTO "volumes" VALUES(1,'6b0e3988fd5473ad1b720623','eastus2',0,'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img');
INSERT INTO "volumes" VALUES(2,'6b0e3988fd5473ad1b720624','eastus2',0,'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720624/member-0.img');
CREATE INDEX ix_api_keys_project_id ON api_keys (project_id);
CREATE INDEX ix_clusters_next_due_at ON clusters (next_due_at);
CREATE INDEX ix_clusters_project_id ON clusters (project_id);
CREATE INDEX ix_volumes_cluster_id ON volumes (cluster_id);
CREATE INDEX ix_snapshots_status ON snapshots (status);
CREATE INDEX ix_snapshots_cluster_created ON snapshots (cluster_id, created_at);
CREATE INDEX ix_restore_jobs_cluster_created ON restore_jobs (cluster_id, created_at);
CREATE INDEX ix_restore_jobs_status ON restore_jobs (status);
COMMIT;
