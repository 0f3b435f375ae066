-- schema.sql - the mlistd database.
--
-- These table and column names are the interface: administrators manage
-- lists with the sqlite3 CLI.  mlistd applies this file to a new or empty
-- database (it is compiled into the daemon at build time) and records the
-- version in PRAGMA user_version.  Every statement is idempotent.
--
-- Addresses and list names compare case-insensitively (COLLATE NOCASE).
-- The CHECK constraints refuse, at INSERT, what mlistd could not send on:
-- addresses with control characters, spaces or angle brackets, without
-- an @, or longer than 254 bytes; list names longer than 64 bytes (the
-- RFC 5321 limit of a local part) or with such characters.  mlistd checks
-- the rows again where it reads them (databases made before these
-- constraints): a bad one is skipped with a warning.
-- Foreign keys are declared for documentation and for sessions that turn
-- them on (PRAGMA foreign_keys = ON); mlistd does.

-- People allowed to post to groups whose posting policy is 'members'.
-- The administrator's alone: subscriptions by mail never add to it.
CREATE TABLE IF NOT EXISTS members (
    address  TEXT NOT NULL PRIMARY KEY COLLATE NOCASE
             CHECK (address LIKE '_%@_%' AND length(address) <= 254
                    AND address NOT GLOB '*[<> ' || char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                        27, 28, 29, 30, 31, 127) || ']*'),
    name     TEXT,
    added    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now'))
);

-- One row per list (is_group = 1) or plain alias such as postmaster
-- (is_group = 0: no Precedence/X-Auto-Response-Suppress).  The name is
-- the local part: group1 receives mail for group1@<domain>; a name never
-- contains "+", which separates a list from its commands
-- (group1+subscribe@<domain>).
-- posting: 'members' (From: must be in members), 'group' (From: must be
-- a current recipient: in this group's group_members and not in
-- unsubscribes for it or '*') or 'anyone'.  A subscription by mail never
-- adds to members: it grants rights on its own list only.
-- subscribe (version 5): who may subscribe by mail.  'closed': nobody;
-- mail to the list's command addresses goes to the postmaster alias, for
-- a person to handle.  'confirm': anyone who confirms from the address.
-- 'members': addresses in members who confirm.  In the last two,
-- current recipients may unsubscribe themselves, confirmed.
-- Moderation (version 7):
-- others: what becomes of a post that `posting` does not allow.
--   'reject' (the default): 550, Postfix returns it to the sender;
--   'hold': kept for a moderator to decide (the held table); 'discard':
--   250, logged, nothing sent (for lists that attract spam).
-- moderated = 1: every post is held, also from those allowed to post
--   (announce lists, emergency moderation).  A post whose every From:
--   address is a moderator of the list is never held, nor refused.
-- notify_owners = 1 (the default): the list's moderators get a short
--   notice when someone subscribes or unsubscribes by mail or is
--   unsubscribed by bounces, at most one an hour per moderator.
-- notify_held = 1: the author of a held post is told it awaits approval
--   (default 0: no mail to a sender who may be forged), at most one such
--   notice per address an hour, whatever the list.
-- dmarc (version 8): this list's dmarc-mitigation: 'auto', 'always' or
--   'never'; NULL (the default) means the option's.  See DELIVERABILITY
--   in mlistd(8).
CREATE TABLE IF NOT EXISTS groups (
    name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE
                CHECK (name <> '' AND name <> '*' AND length(name) <= 64
                       AND name NOT GLOB '*[+@<> ' || char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                           11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                           26, 27, 28, 29, 30, 31, 127) || ']*'),
    description TEXT,
    is_group    INTEGER NOT NULL DEFAULT 1 CHECK (is_group IN (0, 1)),
    posting     TEXT NOT NULL DEFAULT 'members'
                CHECK (posting IN ('members', 'group', 'anyone')),
    subscribe   TEXT NOT NULL DEFAULT 'closed'
                CHECK (subscribe IN ('closed', 'confirm', 'members')),
    others      TEXT NOT NULL DEFAULT 'reject'
                CHECK (others IN ('reject', 'hold', 'discard')),
    moderated   INTEGER NOT NULL DEFAULT 0 CHECK (moderated IN (0, 1)),
    notify_owners INTEGER NOT NULL DEFAULT 1 CHECK (notify_owners IN (0, 1)),
    notify_held INTEGER NOT NULL DEFAULT 0 CHECK (notify_held IN (0, 1)),
    dmarc       TEXT CHECK (dmarc IS NULL OR dmarc IN ('auto', 'always', 'never'))
);

-- Who receives a group's mail.
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL COLLATE NOCASE
               REFERENCES groups (name) ON UPDATE CASCADE ON DELETE CASCADE,
    address    TEXT NOT NULL COLLATE NOCASE
               CHECK (address LIKE '_%@_%' AND length(address) <= 254
                      AND address NOT GLOB '*[<> ' || char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                          11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                          27, 28, 29, 30, 31, 127) || ']*'),
    PRIMARY KEY (group_name, address)
);
CREATE INDEX IF NOT EXISTS group_members_by_address ON group_members (address);

-- Opt-outs: suppress delivery even while the address is still in
-- group_members.  group_name '*' means every group.
-- source (version 5): who made the row.  NULL: an administrator (a row
-- typed with sqlite3 has none); 'request': the member, by a confirmed
-- unsubscribe; 'bounces': bounce-threshold.  A confirmed re-subscription
-- removes mlistd's own rows for that list, never an administrator's.
CREATE TABLE IF NOT EXISTS unsubscribes (
    group_name TEXT NOT NULL COLLATE NOCASE,
    address    TEXT NOT NULL COLLATE NOCASE,
    created    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    source     TEXT,
    PRIMARY KEY (address, group_name)
);

-- One row per failed recipient reported by a bounce (address NULL when
-- none could be parsed), or refused by the relay at RCPT time.
-- action/status as in RFC 3464 ('failed' with 5.x.x is a hard bounce;
-- 'delayed' and 4.x.x are not).  group_name: the list the bounce is
-- about, when known.  evidence: 0 for a hint (a report at the plain
-- bounce address or at an XVERP address, which anybody can forge), 1 for
-- evidence (the failure report of a probe at its signed tag, or a
-- refusal by the relay at RCPT time); bounce-threshold and the clean-up
-- queries count evidence only, and only since the address's latest proof
-- of life (probes.alive_at).  An answer at a probe's tag that shows the
-- mailbox alive is a row with evidence 0 and action NULL.
CREATE TABLE IF NOT EXISTS bounces (
    id           INTEGER PRIMARY KEY,
    received     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    envelope_to  TEXT NOT NULL,
    address      TEXT COLLATE NOCASE,
    status       TEXT,
    action       TEXT,
    diagnostic   TEXT,
    maildir_file TEXT,
    group_name   TEXT COLLATE NOCASE,
    evidence     INTEGER NOT NULL DEFAULT 0 CHECK (evidence IN (0, 1))
);
CREATE INDEX IF NOT EXISTS bounces_by_address ON bounces (address, received);
CREATE INDEX IF NOT EXISTS bounces_by_received ON bounces (received);

-- Probes (version 4): mlistd's own delivery checks, sent to a member
-- after a hint when bounce-threshold is set, at most one per member per
-- probe-interval, from an envelope sender with a signed tag valid until
-- expires (Unix time).  bounced_at: when the probe's bounce came back
-- (it counts once): a delivery-status report with a failed action, or a
-- mailer-daemon's failure notice (see mlistd(8), BOUNCES).
-- alive_at (version 6): when an answer at its tag showed the mailbox
-- alive (proof of life): an auto-reply, or any message from the probed
-- address.  bounce-threshold counts only the evidence received after the
-- address's latest proof of life; the older rows stay in bounces.
-- Kept by mlistd; old rows are pruned, except each address's latest
-- proof of life.
CREATE TABLE IF NOT EXISTS probes (
    address    TEXT NOT NULL COLLATE NOCASE,
    group_name TEXT NOT NULL COLLATE NOCASE,
    sent_at    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    bounced_at INTEGER,
    alive_at   INTEGER,
    PRIMARY KEY (address, expires)
) WITHOUT ROWID;

-- Copies relayed, being relayed, or relayed in part (version 4).  This
-- is mlistd's own memory for "exactly once"; an administrator never
-- edits it.  One row per copy (list, digest: the SHA-1 of the message as
-- received), written before mlistd contacts the relay:
--   owner, claimed_at: the worker (pid) sending it now, and when it
--     claimed it (Unix time, for people to read); NULL: nobody.
--   boot, lease (version 6): the claim is a lease on the host's boot
--     clock (CLOCK_BOOTTIME seconds of the boot whose id is `boot`),
--     which no wall-clock step moves.  A second attempt that finds a
--     live claim (owner running, same boot, lease not over) answers 451
--     and sends nothing; a claim whose owner died, or whose lease is
--     over, is taken over.
--   generation (version 6): counts the claims of the copy.  Every write
--     a claim's owner makes afterwards (renewal, checkpoint, completion,
--     release) holds only while owner and generation are still its own,
--     so a worker that stalled past its lease and was taken over writes
--     nothing and stops sending.
--   touched (version 6): the boot clock at the copy's last claim,
--     checkpoint or completion (boot stays the boot of that moment).
--     A row is forgotten after dedup-window by relayed_at, the wall
--     clock, unless it is younger than that by this boot's clock, or it
--     is from an earlier boot and this boot is younger than the window,
--     or it is claimed: a step of the wall clock forward (a machine
--     without a real-time clock, set by NTP after it booted) never makes
--     mlistd forget a copy whose retry may still come.
--   complete = 1: every member was served; a retry is answered 250 and
--     nothing is sent again.  complete = 0: relayed_rcpt holds the
--     members already served (refused = 0) or refused for good by the
--     relay (refused = 1), committed after each relay transaction; the
--     retry sends only to the others.
-- Rows older than dedup-window are ignored and pruned (id grows with
-- time, so pruning reads only old rows).
CREATE TABLE IF NOT EXISTS relayed (
    id          INTEGER PRIMARY KEY,
    group_name  TEXT NOT NULL COLLATE NOCASE,
    digest      TEXT NOT NULL,
    message_id  TEXT,
    relayed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    complete    INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
    owner       INTEGER,
    claimed_at  INTEGER,
    boot        TEXT,
    lease       INTEGER,
    generation  INTEGER NOT NULL DEFAULT 0,
    touched     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS relayed_by_copy ON relayed (digest, group_name);

CREATE TABLE IF NOT EXISTS relayed_rcpt (
    copy_id  INTEGER NOT NULL REFERENCES relayed (id) ON DELETE CASCADE,
    address  TEXT NOT NULL COLLATE NOCASE,
    refused  INTEGER NOT NULL DEFAULT 0 CHECK (refused IN (0, 1)),
    PRIMARY KEY (copy_id, address)
) WITHOUT ROWID;

-- Requests by mail (version 5): one row per message mlistd sent in answer
-- to a command address (a confirmation request, help, a refusal, "start
-- again"), kept by mlistd; an administrator reads it (sql/queries.sql)
-- but never needs to edit it.
--   action: 'subscribe' or 'unsubscribe' (a confirmation request whose
--     token expires at `expires`), or 'help', 'refused', 'start-again'
--     (expires = sent_at).
--   sent_at: Unix time.  At most one answer per normalized address an
--     hour, whatever the list: further requests get no answer (no mail
--     bombs).  The exception: a current recipient's unsubscribe gets
--     its confirmation request, at most 3 per address an hour (any list).
--   done_at: when the request was confirmed (NULL: pending or never);
--     a token whose row has done_at is used and never works again.
--   digest: the SHA-1 of the message that made or completed the row, so
--     that a retry of that same message is recognised, and so that one
--     message gets at most one answer however many command addresses
--     it names.
--   normalized (version 6): the address the hourly limit counts: lower
--     case, the local part without its subaddress (victim+1@ and
--     Victim@ are victim@).  Rows of older versions have lower(address).
-- Rows are pruned a week after they expire.
CREATE TABLE IF NOT EXISTS requests (
    group_name TEXT NOT NULL COLLATE NOCASE,
    address    TEXT NOT NULL COLLATE NOCASE,
    action     TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    done_at    INTEGER,
    digest     TEXT,
    normalized TEXT,
    PRIMARY KEY (address, group_name, action, expires)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_by_expiry ON requests (expires);
CREATE INDEX IF NOT EXISTS requests_by_normalized ON requests (normalized, sent_at);
CREATE INDEX IF NOT EXISTS requests_by_digest ON requests (digest);

-- Moderators (version 7): who decides on a list's held posts, and who
-- may always post to it.  They are the list's owners too: with
-- groups.notify_owners they hear of subscriptions and unsubscriptions.
CREATE TABLE IF NOT EXISTS moderators (
    group_name TEXT NOT NULL COLLATE NOCASE
               REFERENCES groups (name) ON UPDATE CASCADE ON DELETE CASCADE,
    address    TEXT NOT NULL COLLATE NOCASE
               CHECK (address LIKE '_%@_%' AND length(address) <= 254
                      AND address NOT GLOB '*[<> ' || char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                          11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                          27, 28, 29, 30, 31, 127) || ']*'),
    PRIMARY KEY (group_name, address)
);

-- Held posts (version 7): one row per post kept for a moderator, written
-- with its file in held-maildir before the 250 (both or neither).
--   sender: the envelope sender; from_addr, subject: as the post says
--     (for people to read; hostile input, shown, never trusted).
--   received, expires: UTC; an undecided post is discarded at expires
--     (decision 'expire').  reason: 'moderated' or 'not allowed'.
--   decision: NULL (waiting), 'approve', 'reject', 'discard' or
--     'expire'.  An administrator decides with
--       UPDATE held SET decision = 'approve' WHERE id = 12;
--     and mlistd carries it out within seconds, exactly as a decision
--     by mail: the first decision wins, and a row with done_at is never
--     carried out again.
--   decided_by: the moderator's address ('sqlite3' when typed, 'mlistd'
--     for an expiry); decided_at, done_at: UTC.
--   outcome: what carrying it out did (sent, the notice, an error).
--   maildir_file: NULL once the decision is carried out (the file is
--     removed then).
--   eightbit, smtputf8, automatic, attempts, next_try: mlistd's own.
CREATE TABLE IF NOT EXISTS held (
    id           INTEGER PRIMARY KEY,
    group_name   TEXT NOT NULL COLLATE NOCASE,
    sender       TEXT NOT NULL,
    from_addr    TEXT,
    subject      TEXT,
    size         INTEGER NOT NULL,
    received     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    expires      TEXT NOT NULL,
    reason       TEXT,
    digest       TEXT NOT NULL,
    maildir_file TEXT,
    eightbit     INTEGER NOT NULL DEFAULT 0,
    smtputf8     INTEGER NOT NULL DEFAULT 0,
    automatic    INTEGER NOT NULL DEFAULT 0,
    decision     TEXT CHECK (decision IN ('approve', 'reject', 'discard', 'expire')),
    decided_by   TEXT,
    decided_at   TEXT,
    done_at      TEXT,
    outcome      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_try     INTEGER NOT NULL DEFAULT 0,
    notified     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_name, digest)
);
CREATE INDEX IF NOT EXISTS held_pending ON held (done_at, group_name);
-- The first decision wins, also with sqlite3: a decision once made (by
-- mail, by an UPDATE, or the expiry) is never changed, so an approval
-- carried out in part is never turned into a rejection half way.
CREATE TRIGGER IF NOT EXISTS held_decided BEFORE UPDATE OF decision ON held
    WHEN OLD.decision IS NOT NULL AND NEW.decision IS NOT OLD.decision
BEGIN
    SELECT RAISE(ABORT, 'this held post was decided already: the first decision wins');
END;

-- mlistd's own memory of the notices it sent about moderation (version
-- 7): held_notices, one per held post and moderator; notices, the
-- rate limits (kind 'moderate', 'decided', 'rejected', 'held',
-- 'changes'; normalized as in requests); changes, subscriptions and
-- unsubscriptions for the moderators' notices; owner_notices, the last
-- change each moderator heard of.  Pruned after a week.
CREATE TABLE IF NOT EXISTS held_notices (
    held_id  INTEGER NOT NULL,
    address  TEXT NOT NULL COLLATE NOCASE,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (held_id, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (
    normalized TEXT NOT NULL,
    kind       TEXT NOT NULL,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_address ON notices (normalized, kind, sent_at);
CREATE TABLE IF NOT EXISTS changes (
    id         INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL COLLATE NOCASE,
    address    TEXT NOT NULL,
    what       TEXT NOT NULL,
    how        TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS owner_notices (
    address     TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    last_change INTEGER NOT NULL,
    sent_at     INTEGER NOT NULL
);

PRAGMA user_version = 8;
