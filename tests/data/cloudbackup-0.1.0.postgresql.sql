-- A database made by cloudbackup 0.1.0 (schema_version 1, before Alembic), frozen: tests adopt it.
-- Made once by 0.1.0's own code, the same rows copied into PostgreSQL tables 0.1.0 created, dumped with
-- pg_dump --inserts (psql's \restrict lines removed).
-- Rows: a project, a backed-up cluster with two completed scheduled snapshots, a completed restore
-- job onto a second cluster, an organization API key (private key in tests/unit/test_migrations.py).
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.api_keys (
    public_key character varying(32) NOT NULL,
    ha1_md5 character varying(32) NOT NULL,
    ha1_sha256 character varying(64) NOT NULL,
    project_id character varying(24),
    read_only boolean NOT NULL,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.clusters (
    id character varying(24) NOT NULL,
    project_id character varying(24) NOT NULL,
    name character varying(64) NOT NULL,
    provider_name character varying(16) NOT NULL,
    instance_size character varying(8) NOT NULL,
    cluster_type character varying(16) NOT NULL,
    regions json NOT NULL,
    disk_size_gb integer NOT NULL,
    state character varying(16) NOT NULL,
    backup_method character varying(32),
    reference_time timestamp without time zone,
    next_due_at timestamp without time zone,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.projects (
    id character varying(24) NOT NULL,
    name character varying(64) NOT NULL,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.restore_jobs (
    id character varying(24) NOT NULL,
    project_id character varying(24) NOT NULL,
    cluster_id character varying(24) NOT NULL,
    snapshot_id character varying(24) NOT NULL,
    target_project_id character varying(24) NOT NULL,
    target_cluster_id character varying(24),
    target_cluster_name character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    operations json NOT NULL,
    failure_reason text,
    created_at timestamp without time zone NOT NULL,
    finished_at timestamp without time zone
);

CREATE TABLE public.schema_version (
    version integer NOT NULL
);

CREATE TABLE public.settings (
    key character varying(64) NOT NULL,
    value text NOT NULL
);

CREATE TABLE public.snapshots (
    id character varying(24) NOT NULL,
    cluster_id character varying(24) NOT NULL,
    project_id character varying(24) NOT NULL,
    snapshot_type character varying(16) NOT NULL,
    slot_time timestamp without time zone,
    status character varying(16) NOT NULL,
    region character varying(64) NOT NULL,
    volume_handle character varying(1024),
    op_token text,
    handle character varying(1024),
    storage_size_bytes bigint,
    disk_size_bytes bigint,
    checksum character varying(128),
    failure_reason text,
    description character varying(256),
    created_at timestamp without time zone NOT NULL,
    finished_at timestamp without time zone
);

CREATE TABLE public.volumes (
    id integer NOT NULL,
    cluster_id character varying(24) NOT NULL,
    region character varying(64) NOT NULL,
    member integer NOT NULL,
    handle character varying(1024)
);

CREATE SEQUENCE public.volumes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.volumes_id_seq OWNED BY public.volumes.id;

ALTER TABLE ONLY public.volumes ALTER COLUMN id SET DEFAULT nextval('public.volumes_id_seq'::regclass);

INSERT INTO public.api_keys VALUES ('jjgcvpai', '1056a00ac985e5cff8480f08794f2dad', 'ba52def3be82d908dc338a3ee44bdcff47bf38d4df517fd34ee1044f71cb87ca', NULL, false, '2026-12-01 03:05:44.134495');

INSERT INTO public.clusters VALUES ('6b0e3988fd5473ad1b720623', '6b0e3988fd5473ad1b720622', 'rs1', 'AZURE', 'M10', 'REPLICASET', '{"eastus2": {"priority": 7, "electableNodes": 1}}', 1, 'IDLE', 'CLOUD_PROVIDER_SNAPSHOTS', '2026-12-01 03:05:44', '2026-12-03 03:05:44', '2026-12-01 03:05:44');
INSERT INTO public.clusters VALUES ('6b0e3988fd5473ad1b720624', '6b0e3988fd5473ad1b720622', 'dst', 'AZURE', 'M10', 'REPLICASET', '{"eastus2": {"priority": 7, "electableNodes": 1}}', 1, 'IDLE', NULL, NULL, NULL, '2026-12-01 03:05:44');

INSERT INTO public.projects VALUES ('6b0e3988fd5473ad1b720622', 'legacy', '2026-12-01 03:05:44');

INSERT INTO public.restore_jobs VALUES ('6b0e3988fd5473ad1b720627', '6b0e3988fd5473ad1b720622', '6b0e3988fd5473ad1b720623', '6b0e3988fd5473ad1b720626', '6b0e3988fd5473ad1b720622', '6b0e3988fd5473ad1b720624', 'dst', 'completed', '[{"volumeId": 2, "region": "eastus2", "volumeHandle": "volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720624/member-0.img", "token": "restore:4eb6809f39a3486891fadc7418294a43", "state": "succeeded", "checksum": "sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525"}]', NULL, '2026-12-02 04:05:44', '2026-12-02 04:05:44');

INSERT INTO public.schema_version VALUES (1);

INSERT INTO public.settings VALUES ('manual_clock_now', '2026-12-02T04:05:44+00:00');
INSERT INTO public.settings VALUES ('digest_nonce_key', '63913b9033ffe9089fc72228477c2c4bd8349b1caacee99b5f118dc7143743b7');

INSERT INTO public.snapshots VALUES ('6b0e3988fd5473ad1b720625', '6b0e3988fd5473ad1b720623', '6b0e3988fd5473ad1b720622', 'scheduled', '2026-12-01 03:05:44', 'completed', 'eastus2', 'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img', 'snapshot:eastus2/6b0e3988fd5473ad1b720625', 'snapshots/eastus2/6b0e3988fd5473ad1b720625.snap', 0, 1073741824, 'sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525', NULL, NULL, '2026-12-01 03:05:44', '2026-12-01 03:05:44');
INSERT INTO public.snapshots VALUES ('6b0e3988fd5473ad1b720626', '6b0e3988fd5473ad1b720623', '6b0e3988fd5473ad1b720622', 'scheduled', '2026-12-02 03:05:44', 'completed', 'eastus2', 'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img', 'snapshot:eastus2/6b0e3988fd5473ad1b720626', 'snapshots/eastus2/6b0e3988fd5473ad1b720626.snap', 0, 1073741824, 'sha256-4m:9e8b33874ad8566cf0b5d1b0089dd4ec7804978933677fd8019aa64fc5640525', NULL, NULL, '2026-12-02 03:05:44', '2026-12-02 03:05:44');

INSERT INTO public.volumes VALUES (1, '6b0e3988fd5473ad1b720623', 'eastus2', 0, 'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720623/member-0.img');
INSERT INTO public.volumes VALUES (2, '6b0e3988fd5473ad1b720624', 'eastus2', 0, 'volumes/eastus2/6b0e3988fd5473ad1b720622/6b0e3988fd5473ad1b720624/member-0.img');

SELECT pg_catalog.setval('public.volumes_id_seq', 2, true);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (public_key);

ALTER TABLE ONLY public.clusters
    ADD CONSTRAINT clusters_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_name_key UNIQUE (name);

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.restore_jobs
    ADD CONSTRAINT restore_jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (key);

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT snapshots_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.clusters
    ADD CONSTRAINT uq_clusters_project_name UNIQUE (project_id, name);

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT uq_snapshots_slot UNIQUE (cluster_id, slot_time);

ALTER TABLE ONLY public.volumes
    ADD CONSTRAINT uq_volumes_member UNIQUE (cluster_id, region, member);

ALTER TABLE ONLY public.volumes
    ADD CONSTRAINT volumes_pkey PRIMARY KEY (id);

CREATE INDEX ix_api_keys_project_id ON public.api_keys USING btree (project_id);

CREATE INDEX ix_clusters_next_due_at ON public.clusters USING btree (next_due_at);

CREATE INDEX ix_clusters_project_id ON public.clusters USING btree (project_id);

CREATE INDEX ix_restore_jobs_cluster_created ON public.restore_jobs USING btree (cluster_id, created_at);

CREATE INDEX ix_restore_jobs_status ON public.restore_jobs USING btree (status);

CREATE INDEX ix_snapshots_cluster_created ON public.snapshots USING btree (cluster_id, created_at);

CREATE INDEX ix_snapshots_status ON public.snapshots USING btree (status);

CREATE INDEX ix_volumes_cluster_id ON public.volumes USING btree (cluster_id);

ALTER TABLE ONLY public.clusters
    ADD CONSTRAINT clusters_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);

ALTER TABLE ONLY public.restore_jobs
    ADD CONSTRAINT restore_jobs_cluster_id_fkey FOREIGN KEY (cluster_id) REFERENCES public.clusters(id);

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT snapshots_cluster_id_fkey FOREIGN KEY (cluster_id) REFERENCES public.clusters(id);

ALTER TABLE ONLY public.volumes
    ADD CONSTRAINT volumes_cluster_id_fkey FOREIGN KEY (cluster_id) REFERENCES public.clusters(id);
