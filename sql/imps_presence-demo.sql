-- Rules of the demo network: users of a.example watch each other without a confirmation
-- step. Remove this row (or add user rules) to change it, e.g.:
--   kamcmd -s unix:/run/imps/ps-a.ctl imps_presence.authorize alice@a.example bob@a.example confirm
INSERT INTO imps_presence_rules (presentity, watcher, action) VALUES ('a.example', 'a.example', 'allow');
-- ... and so do the users of the peer network b.example (cross-domain watching, seed 7.2.3)
INSERT INTO imps_presence_rules (presentity, watcher, action) VALUES ('a.example', 'b.example', 'allow');
