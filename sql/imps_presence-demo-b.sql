-- Rules of the demo network's second domain: users of b.example, and those of the peer
-- network a.example, watch b.example's users without a confirmation step.
INSERT INTO imps_presence_rules (presentity, watcher, action) VALUES ('b.example', 'b.example', 'allow');
INSERT INTO imps_presence_rules (presentity, watcher, action) VALUES ('b.example', 'a.example', 'allow');
