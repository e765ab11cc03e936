-- Runs once, when the postgres service of compose.yaml initialises an empty data volume (mounted into
-- /docker-entrypoint-initdb.d; psql runs it as the superuser POSTGRES_USER with ON_ERROR_STOP).
-- Creates Marid's application role: it logs in and creates roles (one per workspace) but is not a superuser and
-- cannot create databases, and it owns the `marid` database (so, in PostgreSQL 15, its `public` schema too).
-- The password comes from the container's MARID_DB_PASSWORD (psql 15's \getenv), never from this file.
\set ON_ERROR_STOP on
\getenv marid_password MARID_DB_PASSWORD
\if :{?marid_password}
\else
  \set marid_password ''
\endif
SELECT :'marid_password' = '' AS marid_password_missing \gset
\if :marid_password_missing
  DO $$ BEGIN RAISE EXCEPTION 'MARID_DB_PASSWORD is not set in the postgres service environment'; END $$;
\endif

CREATE ROLE marid LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD :'marid_password';
CREATE DATABASE marid OWNER marid;
