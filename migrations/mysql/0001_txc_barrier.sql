-- txc participant-side barrier (tcc/barrier/mysql_barrier.h), for MySQL and MariaDB: one
-- row per (gid, branch, op) that a saga or TCC handler has entered. A row is written inside the
-- handler's own transaction, so it exists exactly when that transaction committed.
--   gid, branch  the coordinator's Txc-Gid (1-56) and Txc-Branch (1-64) of [A-Za-z0-9._-]
--   op           action, compensate, try, confirm or cancel
--   origin       the op whose request wrote the row: op itself, or, for the action/try row that
--                a compensate/cancel writes first, that compensate/cancel (a later action/try
--                then finds it and is refused)
--   created_at   UTC, written by the library (DATETIME: TIMESTAMP ends in 2038)
-- ascii_bin: the values are ASCII, and gids and branches must compare byte for byte (a case- or
-- accent-insensitive collation would make "Order-1" a duplicate of "order-1").
-- InnoDB: the barrier relies on row locks and on rolling back with the caller's transaction.
-- One statement only: the library sends this text, less the final semicolon, as one statement.
CREATE TABLE IF NOT EXISTS txc_barrier (
  gid        VARCHAR(56) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  branch     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  op         VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  origin     VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (gid, branch, op),
  CONSTRAINT txc_barrier_op CHECK (op IN ('action', 'compensate', 'try', 'confirm', 'cancel')),
  CONSTRAINT txc_barrier_origin
    CHECK (origin IN ('action', 'compensate', 'try', 'confirm', 'cancel'))
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
