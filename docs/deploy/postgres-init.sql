-- Run once by the postgres image on an empty volume (docker-entrypoint-initdb.d): the
-- service's non-owner role, able to log in. The migrations (run by the service at start,
-- as the owner) grant it DML and put every tenant table under row-level security.
CREATE ROLE invoicing_app LOGIN PASSWORD 'invoicing_app' NOSUPERUSER NOBYPASSRLS
    NOCREATEDB NOCREATEROLE;
