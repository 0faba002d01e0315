/**
 * src/store/sqlite-driver.ts as the executable's bundle sees it: better-sqlite3 is the class the
 * executable carries (better-sqlite3.ts here), whichever version the build embedded.
 */
import Database from 'better-sqlite3'

export const SQLite = Database
