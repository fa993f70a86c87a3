-- imps_xcap documents (the List and Policy Server, RFC 4825), SQLite and PostgreSQL alike.
--   path      "<auid>/users/<xui>/<document>" or "<auid>/global/<document>" (decoded), unique
--   auid      the application usage ("resource-lists", "pres-rules", ...)
--   xui       the owner ("sip:alice@a.example"); '' for global documents
--   doc       the document, UTF-8, as stored (the body of a document PUT byte for byte)
--   etag      its strong ETag; every change writes a new one, conditionally on the old one
--   size      bytes of doc; modified: unix time of the last change
CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

CREATE TABLE imps_xcap (
    path VARCHAR(512) NOT NULL,
    auid VARCHAR(64) NOT NULL,
    xui VARCHAR(255) NOT NULL,
    doc TEXT NOT NULL,
    etag VARCHAR(64) NOT NULL,
    size INTEGER NOT NULL,
    modified BIGINT NOT NULL,
    CONSTRAINT imps_xcap_path_idx UNIQUE (path)
);
CREATE INDEX imps_xcap_xui_idx ON imps_xcap (xui);
CREATE INDEX imps_xcap_auid_idx ON imps_xcap (auid);

INSERT INTO version (table_name, table_version) VALUES ('imps_xcap', 1);
