-- example.sql - a small club, for trying mlistd out:
--   sqlite3 /var/lib/mlistd/mlistd.db < example.sql
-- (the daemon creates the schema itself; this file only adds rows).
-- Addresses use example.org, a domain reserved for documentation.

INSERT OR IGNORE INTO members (address, name) VALUES
    ('alice@example.org', 'Alice Example'),
    ('bob@example.org',   'Bob Example'),
    ('carol@example.org', 'Carol Example');

-- group1: a list; its two members receive every post; any of the three
-- members may post.  Nobody subscribes by mail (subscribe = 'closed', the
-- default): group1+subscribe@ and the others go to the postmaster.
INSERT OR IGNORE INTO groups (name, description, is_group, posting) VALUES
    ('group1', 'Club members', 1, 'members');

-- news: anyone may subscribe by mail, after confirming
-- (news+subscribe@DOMAIN), and leave (news+unsubscribe@DOMAIN); only
-- its recipients may post.
INSERT OR IGNORE INTO groups (name, description, is_group, posting, subscribe) VALUES
    ('news', 'Club news', 1, 'group', 'confirm');
INSERT OR IGNORE INTO group_members (group_name, address) VALUES
    ('group1', 'alice@example.org'),
    ('group1', 'bob@example.org');

-- postmaster: a plain alias (no list headers like Precedence: bulk);
-- anyone may write to it, bounces and auto-replies included.
INSERT OR IGNORE INTO groups (name, description, is_group, posting) VALUES
    ('postmaster', 'Postmaster', 0, 'anyone');
INSERT OR IGNORE INTO group_members (group_name, address) VALUES
    ('postmaster', 'carol@example.org');
