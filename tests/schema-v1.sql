-- schema-v1.sql - frozen: the first schema mlistd shipped (user_version 1),
-- the oldest a current mlistd upgrades; tests/check_store.c test_upgrade_v1.
-- schema.sql - the mlistd database.
--
-- These table and column names are the interface: administrators manage
-- lists with the sqlite3 CLI.  mlistd applies this file to a new or empty
-- database (it is compiled into the daemon at build time) and records the
-- version in PRAGMA user_version.  Every statement is idempotent.
--
-- Addresses and list names compare case-insensitively (COLLATE NOCASE).
-- Foreign keys are declared for documentation and for sessions that turn
-- them on (PRAGMA foreign_keys = ON); mlistd does.

-- People allowed to post to groups whose posting policy is 'members'.
CREATE TABLE IF NOT EXISTS members (
    address  TEXT NOT NULL PRIMARY KEY COLLATE NOCASE
             CHECK (address LIKE '_%@_%' AND address NOT LIKE '% %'),
    name     TEXT,
    added    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now'))
);

-- One row per list (is_group = 1) or plain alias such as postmaster
-- (is_group = 0: no Precedence/X-Auto-Response-Suppress).  The name is
-- the local part: group1 receives mail for group1@<domain>.
-- posting: 'members' (From: must be in members), 'group' (From: must be
-- in this group's group_members) or 'anyone'.
CREATE TABLE IF NOT EXISTS groups (
    name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE
                CHECK (name <> '' AND name NOT LIKE '%@%' AND name NOT LIKE '% %'
                       AND name <> '*'),
    description TEXT,
    is_group    INTEGER NOT NULL DEFAULT 1 CHECK (is_group IN (0, 1)),
    posting     TEXT NOT NULL DEFAULT 'members'
                CHECK (posting IN ('members', 'group', 'anyone'))
);

-- Who receives a group's mail.
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL COLLATE NOCASE
               REFERENCES groups (name) ON UPDATE CASCADE ON DELETE CASCADE,
    address    TEXT NOT NULL COLLATE NOCASE
               CHECK (address LIKE '_%@_%' AND address NOT LIKE '% %'),
    PRIMARY KEY (group_name, address)
);
CREATE INDEX IF NOT EXISTS group_members_by_address ON group_members (address);

-- Opt-outs: suppress delivery even while the address is still in
-- group_members.  group_name '*' means every group.
CREATE TABLE IF NOT EXISTS unsubscribes (
    group_name TEXT NOT NULL COLLATE NOCASE,
    address    TEXT NOT NULL COLLATE NOCASE,
    created    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    PRIMARY KEY (address, group_name)
);

-- One row per failed recipient reported by a bounce (address NULL when
-- none could be parsed), or refused by the relay at RCPT time.
-- action/status as in RFC 3464 ('failed' with 5.x.x is a hard bounce;
-- 'delayed' and 4.x.x are not).  group_name: the list the bounce is
-- about, when known.
CREATE TABLE IF NOT EXISTS bounces (
    id           INTEGER PRIMARY KEY,
    received     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    envelope_to  TEXT NOT NULL,
    address      TEXT COLLATE NOCASE,
    status       TEXT,
    action       TEXT,
    diagnostic   TEXT,
    maildir_file TEXT,
    group_name   TEXT COLLATE NOCASE
);
CREATE INDEX IF NOT EXISTS bounces_by_address ON bounces (address, received);
CREATE INDEX IF NOT EXISTS bounces_by_received ON bounces (received);

PRAGMA user_version = 1;
