-- The demo users' documents (make run): alice's buddy list with bob and carol, and the list
-- service that presents it (the resource list server of the next roles reads it).
INSERT INTO imps_xcap (path, auid, xui, doc, etag, size, modified) VALUES ('resource-lists/users/sip:alice@a.example/index', 'resource-lists', 'sip:alice@a.example', '<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="buddies">
    <display-name>Buddies</display-name>
    <entry uri="sip:bob@a.example"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@a.example"><display-name>Carol</display-name></entry>
  </list>
</resource-lists>
', 'demo-alice-buddies-1', 351, 1764633600);
INSERT INTO imps_xcap (path, auid, xui, doc, etag, size, modified) VALUES ('rls-services/users/sip:alice@a.example/index', 'rls-services', 'sip:alice@a.example', '<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
  <service uri="sip:alice-buddies@a.example">
    <resource-list>http://127.0.0.1:8080/xcap-root/resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22buddies%22%5d</resource-list>
    <packages><package>presence</package></packages>
  </service>
</rls-services>
', 'demo-alice-rls-1', 388, 1764633600);
