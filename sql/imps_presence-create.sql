-- imps_presence watcher authorization rules (SQLite and PostgreSQL: the same file for both).
--   presentity  "user@host" (one user) or "host" (every user of a domain)
--   watcher     "user@host" (one watcher), "host" (every watcher of a domain) or "*"
--   action      allow | block | polite-block | confirm
-- The most specific rule wins: rules of the user beat rules of its domain; within each, the
-- watcher's identity beats its domain beats "*". No rule: the module's default_action.
CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

CREATE TABLE imps_presence_rules (
    presentity VARCHAR(255) NOT NULL,
    watcher VARCHAR(255) NOT NULL,
    action VARCHAR(16) NOT NULL,
    CONSTRAINT imps_presence_rules_pk PRIMARY KEY (presentity, watcher)
);

INSERT INTO version (table_name, table_version) VALUES ('imps_presence_rules', 1);
