-- queries.sql - clean-up queries for mlistd administrators.
--   sqlite3 /var/lib/mlistd/mlistd.db < queries.sql    (or paste one)
-- Running the file only reads: every statement that changes data is
-- commented out; paste it by hand when you mean it.
-- Hard bounces are rows with action 'failed' and a 5.x.x status;
-- 'delayed' rows and 4.x.x statuses are warnings, never count them.
-- evidence = 1 rows prove something (a probe's failure report at its
-- signed tag, or a refusal by mlistd's own relay); evidence = 0 rows are
-- hints, from reports that anybody can forge.  Act on evidence, and only
-- on the evidence after the address's latest proof of life
-- (probes.alive_at: its mailbox answered a probe, e.g. an out-of-office).
-- Change 30 (days) and 3 (bounces) to taste.

-- Recent bounces, newest first.
SELECT received, address, group_name, action, status, evidence, diagnostic
  FROM bounces
 WHERE received >= datetime('now', '-7 days')
 ORDER BY received DESC;

-- Addresses with 3 or more hard bounces in the last 30 days, as
-- evidence since their latest proof of life (what bounce-threshold counts).
SELECT address, count(*) AS hard_bounces, max(received) AS last
  FROM bounces b
 WHERE action = 'failed' AND status LIKE '5.%' AND evidence = 1
   AND received >= datetime('now', '-30 days')
   AND received > coalesce((SELECT datetime(max(alive_at), 'unixepoch')
        FROM probes p WHERE p.address = b.address), '')
 GROUP BY address
HAVING count(*) >= 3
 ORDER BY hard_bounces DESC;

-- Hints: hard bounces nobody has confirmed yet (with bounce-threshold
-- set, mlistd probes such members itself; see probes).
SELECT address, count(*) AS hints, max(received) AS last
  FROM bounces
 WHERE action = 'failed' AND status LIKE '5.%' AND evidence = 0
   AND address IS NOT NULL AND received >= datetime('now', '-30 days')
 GROUP BY address
 ORDER BY hints DESC;

-- Probes sent, which of them bounced, and which were answered by the
-- mailbox itself (proof of life).
SELECT address, group_name, datetime(sent_at, 'unixepoch') AS sent,
       datetime(bounced_at, 'unixepoch') AS bounced,
       datetime(alive_at, 'unixepoch') AS alive
  FROM probes ORDER BY sent_at DESC;

-- Bounces that could not be parsed (address NULL): read them in the
-- Maildir, under the file name given.
SELECT received, envelope_to, maildir_file
  FROM bounces
 WHERE address IS NULL
 ORDER BY received DESC;

-- Record those addresses as unsubscribed from every list (reversible:
-- delete the unsubscribes rows to undo; the memberships stay).
-- INSERT OR IGNORE INTO unsubscribes (group_name, address)
-- SELECT '*', address
--   FROM bounces b
--  WHERE action = 'failed' AND status LIKE '5.%' AND evidence = 1
--    AND received >= datetime('now', '-30 days')
--    AND received > coalesce((SELECT datetime(max(alive_at), 'unixepoch')
--         FROM probes p WHERE p.address = b.address), '')
--  GROUP BY address
-- HAVING count(*) >= 3;

-- Or remove them from every list outright (not reversible).
-- DELETE FROM group_members WHERE address IN (
--     SELECT address FROM bounces b
--      WHERE action = 'failed' AND status LIKE '5.%' AND evidence = 1
--        AND received >= datetime('now', '-30 days')
--        AND received > coalesce((SELECT datetime(max(alive_at), 'unixepoch')
--             FROM probes p WHERE p.address = b.address), '')
--      GROUP BY address HAVING count(*) >= 3);

-- Who is unsubscribed, since when, and by whom (source NULL: an
-- administrator; 'request': the member, confirmed by mail; 'bounces':
-- bounce-threshold).
SELECT group_name, address, created, coalesce(source, 'administrator') AS source
  FROM unsubscribes ORDER BY created DESC;

-- Who may subscribe by mail to which list ('closed': nobody, requests go
-- to the postmaster alias; 'confirm': anyone who confirms; 'members':
-- addresses in members who confirm).
SELECT name, posting, subscribe FROM groups WHERE is_group = 1 ORDER BY name;

-- Subscription requests waiting for their confirmation (until expires).
SELECT group_name, address, action, datetime(sent_at, 'unixepoch') AS asked,
       datetime(expires, 'unixepoch') AS expires
  FROM requests
 WHERE done_at IS NULL AND action IN ('subscribe', 'unsubscribe')
   AND expires > CAST(strftime('%s', 'now') AS INTEGER)
 ORDER BY sent_at DESC;

-- Subscriptions and unsubscriptions confirmed by mail in the last 30 days.
SELECT datetime(done_at, 'unixepoch') AS confirmed, group_name, address, action
  FROM requests
 WHERE done_at IS NOT NULL
   AND done_at >= CAST(strftime('%s', 'now', '-30 days') AS INTEGER)
 ORDER BY done_at DESC;

-- Open a list to subscriptions by mail, or close it again:
-- UPDATE groups SET subscribe = 'confirm' WHERE name = 'group1';
-- UPDATE groups SET subscribe = 'closed' WHERE name = 'group1';

-- Moderation (mlistd(8), MODERATION).  Each list's policy: others is
-- what becomes of a post that posting does not allow ('reject', 'hold',
-- 'discard'); moderated = 1 holds every post but the moderators' own.
SELECT g.name, g.posting, g.others, g.moderated, g.notify_owners, g.notify_held,
       (SELECT count(*) FROM moderators m WHERE m.group_name = g.name) AS moderators
  FROM groups g WHERE g.is_group = 1 ORDER BY g.name;

-- Posts waiting for a moderator, per list, oldest first (from: the From:
-- address, or the envelope sender when the post has none; both are the
-- sender's word, not proof).  Decide on one (carried out within seconds):
--   UPDATE held SET decision = 'approve' WHERE id = 12 AND decision IS NULL;
-- or 'reject' (the author is told) or 'discard' (nobody is told).
SELECT id, group_name AS list, coalesce(from_addr, sender) AS "from", subject,
       received, expires
  FROM held
 WHERE decision IS NULL AND done_at IS NULL
 ORDER BY group_name, id;

-- Decisions of the last 30 days, newest first: who (an address, 'sqlite3',
-- or 'mlistd' for an expiry), what, when it was carried out (NULL: not
-- yet; outcome then says why it waits) and what that did.
SELECT id, group_name AS list, coalesce(from_addr, sender) AS "from", subject,
       coalesce(decided_by, 'sqlite3') AS decided_by, decision, decided_at,
       done_at, outcome
  FROM held
 WHERE decision IS NOT NULL
   AND coalesce(decided_at, done_at, received) >= datetime('now', '-30 days')
 ORDER BY coalesce(done_at, decided_at) DESC, id DESC;

-- Forget held posts carried out more than 90 days ago (their files are
-- gone already).
-- DELETE FROM held WHERE done_at < datetime('now', '-90 days');

-- Forget bounces older than a year.
-- DELETE FROM bounces WHERE received < datetime('now', '-365 days');
