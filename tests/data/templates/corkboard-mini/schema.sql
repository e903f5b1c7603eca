-- notes anyone may pin; votes each visitor keeps for itself
CREATE TABLE notes (
  _id INTEGER PRIMARY KEY AUTOINCREMENT,
  _owner TEXT NOT NULL,
  _owner_email TEXT DEFAULT '',
  _created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  text TEXT NOT NULL,
  color TEXT DEFAULT 'yellow'
);
create table if not exists Votes (
  _id INTEGER PRIMARY KEY AUTOINCREMENT,
  _owner TEXT NOT NULL,
  note_id INTEGER NOT NULL,
  _created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS _scratch (k TEXT PRIMARY KEY, v TEXT);
CREATE INDEX notes_color ON notes (color);
INSERT INTO notes (_owner, text) VALUES ('seed', 'Welcome to the board');
