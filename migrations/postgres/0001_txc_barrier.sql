-- txc participant-side barrier (tcc/barrier/postgres_barrier.h): one row per (gid, branch, op)
-- that a saga or TCC handler has entered. A row is written inside the handler's own transaction,
-- so it exists exactly when that transaction committed.
--   gid, branch  the coordinator's Txc-Gid (1-56) and Txc-Branch (1-64) of [A-Za-z0-9._-]
--   op           action, compensate, try, confirm or cancel
--   origin       the op whose request wrote the row: op itself, or, for the action/try row that
--                a compensate/cancel writes first, that compensate/cancel (a later action/try
--                then finds it and is refused)
-- COLLATE "C": gids and branches compare byte for byte, whatever the database's locale.
CREATE TABLE IF NOT EXISTS txc_barrier (
  gid        varchar(56) COLLATE "C" NOT NULL,
  branch     varchar(64) COLLATE "C" NOT NULL,
  op         varchar(10) COLLATE "C" NOT NULL
             CHECK (op IN ('action', 'compensate', 'try', 'confirm', 'cancel')),
  origin     varchar(10) COLLATE "C" NOT NULL
             CHECK (origin IN ('action', 'compensate', 'try', 'confirm', 'cancel')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (gid, branch, op)
);
