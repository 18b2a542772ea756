//! The SQL of the stores: [`Dialect`], for quoting and the statements that differ, and
//! [`Statements`], built once per store from its [`TableMapping`].

use super::TableMapping;

/// The SQL dialects, for quoting and the statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// Quotes a name that [`checked`] accepted (it holds no quote character).
    ///
    /// SQLite takes a double-quoted name that matches no column for a string literal, so
    /// a mapped column missing from the table would pass unnoticed; backquoted names are
    /// always names there, as in MySQL.
    ///
    /// [`checked`]: super::mapping::checked
    pub(super) fn quote(self, name: &str) -> String {
        match self {
            Self::Sqlite | Self::MySql => format!("`{name}`"),
            Self::Postgres => format!("\"{name}\""),
        }
    }

    /// The `n`th bind parameter (from 1); MySQL's are positional, so statements bind in
    /// the order the parameters appear.
    pub(super) fn param(self, n: usize) -> String {
        match self {
            Self::MySql => "?".to_owned(),
            Self::Sqlite | Self::Postgres => format!("${n}"),
        }
    }
}

/// The statements of one store, built once from its validated, quoted names.
#[derive(Debug)]
pub struct Statements {
    /// Quoted names, for statements built per call.
    pub(super) table: String,
    pub(super) id: String,
    pub(super) data: String,
    pub(super) expiry: String,
    pub(super) version: String,
    /// `(key, now)`: the live row.
    pub(super) select: String,
    /// `(touch, key, now)`: extend and return the live row (SQLite, PostgreSQL).
    pub(super) touch: String,
    /// `(key)`: the row, locked (PostgreSQL, MySQL) for the rest of the transaction.
    pub(super) lock: String,
    /// `(key, data, expiry, version)`: a new row; on SQLite and PostgreSQL nothing
    /// happens when the key exists.
    pub(super) insert: String,
    /// `(data, expiry, key)`.
    pub(super) update: String,
    /// `(data, key)`: the row's data, with its expiry as it is.
    pub(super) rewrite: String,
    /// `(key, data, expiry, version)`: a new row, or the existing one overwritten.
    pub(super) upsert: String,
    /// `(data, expiry, key, version, now)`.
    pub(super) update_seen: String,
    /// `(key, version, now)`.
    pub(super) delete_seen: String,
    /// `(key)`.
    pub(super) delete: String,
    /// `(now, limit)`.
    pub(super) delete_batch: String,
    /// `(now)`.
    pub(super) count_expired: String,
    /// `(after, pattern, now, limit)`: the key and the columns of up to `limit` live rows
    /// whose key is past `after` and matches the `LIKE` `pattern` (escape character `!`),
    /// in key order.
    pub(super) list: String,
    /// Fails unless the table has every mapped column.
    pub(super) probe: String,
    pub(super) create_table: String,
    pub(super) create_index: String,
}

/// The `LIKE` pattern of every key that starts with `prefix` (escape character `!`).
pub(super) fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Statements {
    /// `(key 1, …, key n, now)`: the id and the columns of the live rows among `n` keys
    /// (SQLite's grouped reads).
    #[cfg(feature = "sqlite")]
    pub(super) fn select_many(&self, n: usize) -> String {
        let Self {
            table,
            id,
            data,
            expiry,
            version,
            ..
        } = self;
        let marks = vec!["?"; n].join(", ");
        format!(
            "SELECT {id}, {data}, {expiry}, {version} FROM {table} \
             WHERE {id} IN ({marks}) AND {expiry} > ?"
        )
    }

    pub(super) fn new(dialect: Dialect, mapping: &TableMapping) -> Self {
        let q = |name: &str| dialect.quote(name);
        let p = |n: usize| dialect.param(n);
        let table = match &mapping.schema {
            Some(schema) => format!("{}.{}", q(schema), q(&mapping.table)),
            None => q(&mapping.table),
        };
        let (id, data, expiry, version) = (
            q(&mapping.id),
            q(&mapping.data),
            q(&mapping.expiry),
            q(&mapping.version),
        );
        let index = mapping.index();
        let columns = format!("{data}, {expiry}, {version}");
        // MySQL reports a `utf8mb4_bin` column as binary: listed as text.
        let listed_id = match dialect {
            Dialect::MySql => format!("CONVERT({id} USING utf8mb4)"),
            Dialect::Sqlite | Dialect::Postgres => id.clone(),
        };
        let greatest = match dialect {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres | Dialect::MySql => "GREATEST",
        };
        let for_update = match dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
        };
        let values = format!("({}, {}, {}, {})", p(1), p(2), p(3), p(4));
        let insert_columns = format!("({id}, {data}, {expiry}, {version})");
        let insert = match dialect {
            Dialect::MySql => format!("INSERT INTO {table} {insert_columns} VALUES {values}"),
            Dialect::Sqlite | Dialect::Postgres => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON CONFLICT ({id}) DO NOTHING"
            ),
        };
        let upsert = match dialect {
            Dialect::Sqlite => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON CONFLICT ({id}) DO UPDATE \
                 SET {data} = excluded.{data}, {expiry} = excluded.{expiry}, \
                 {version} = {version} + 1"
            ),
            Dialect::Postgres => format!(
                "INSERT INTO {table} AS cur {insert_columns} VALUES {values} ON CONFLICT ({id}) \
                 DO UPDATE SET {data} = EXCLUDED.{data}, {expiry} = EXCLUDED.{expiry}, \
                 {version} = cur.{version} + 1"
            ),
            Dialect::MySql => format!(
                "INSERT INTO {table} {insert_columns} VALUES {values} ON DUPLICATE KEY UPDATE \
                 {data} = VALUES({data}), {expiry} = VALUES({expiry}), {version} = {version} + 1"
            ),
        };
        let delete_batch = match dialect {
            Dialect::Sqlite => format!(
                "DELETE FROM {table} WHERE {id} IN \
                 (SELECT {id} FROM {table} WHERE {expiry} <= $1 LIMIT $2)"
            ),
            // Rows another cleanup holds are skipped, and a row refreshed meanwhile is
            // checked again once locked.
            Dialect::Postgres => format!(
                "DELETE FROM {table} WHERE {id} IN \
                 (SELECT {id} FROM {table} WHERE {expiry} <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            Dialect::MySql => format!("DELETE FROM {table} WHERE {expiry} <= ? LIMIT ?"),
        };
        let create_table = match dialect {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) NOT NULL PRIMARY KEY, \
                 {data} BLOB NOT NULL, {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL)"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) NOT NULL PRIMARY KEY, \
                 {data} BYTEA NOT NULL, {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({id} VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, {data} LONGBLOB NOT NULL, \
                 {expiry} BIGINT NOT NULL, {version} BIGINT NOT NULL) ENGINE=InnoDB"
            ),
        };
        let create_index = match (dialect, &mapping.schema) {
            // SQLite names the schema on the index, and the table bare.
            (Dialect::Sqlite, Some(schema)) => format!(
                "CREATE INDEX IF NOT EXISTS {}.{} ON {} ({expiry})",
                q(schema),
                q(&index),
                q(&mapping.table)
            ),
            (Dialect::Sqlite | Dialect::Postgres, _) => format!(
                "CREATE INDEX IF NOT EXISTS {} ON {table} ({expiry})",
                q(&index)
            ),
            // MySQL has no IF NOT EXISTS here (MariaDB has): "duplicate key name" is
            // taken as success.
            (Dialect::MySql, _) => format!("CREATE INDEX {} ON {table} ({expiry})", q(&index)),
        };
        Self {
            select: format!(
                "SELECT {columns} FROM {table} WHERE {id} = {} AND {expiry} > {}",
                p(1),
                p(2)
            ),
            touch: format!(
                "UPDATE {table} SET {expiry} = {greatest}({expiry}, {}) \
                 WHERE {id} = {} AND {expiry} > {} RETURNING {columns}",
                p(1),
                p(2),
                p(3)
            ),
            lock: format!(
                "SELECT {columns} FROM {table} WHERE {id} = {}{for_update}",
                p(1)
            ),
            insert,
            update: format!(
                "UPDATE {table} SET {data} = {}, {expiry} = {}, {version} = {version} + 1 \
                 WHERE {id} = {}",
                p(1),
                p(2),
                p(3)
            ),
            rewrite: format!(
                "UPDATE {table} SET {data} = {}, {version} = {version} + 1 WHERE {id} = {}",
                p(1),
                p(2)
            ),
            upsert,
            update_seen: format!(
                "UPDATE {table} SET {data} = {}, {expiry} = {}, {version} = {version} + 1 \
                 WHERE {id} = {} AND {version} = {} AND {expiry} > {}",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5)
            ),
            delete_seen: format!(
                "DELETE FROM {table} WHERE {id} = {} AND {version} = {} AND {expiry} > {}",
                p(1),
                p(2),
                p(3)
            ),
            delete: format!("DELETE FROM {table} WHERE {id} = {}", p(1)),
            delete_batch,
            count_expired: format!("SELECT COUNT(*) FROM {table} WHERE {expiry} <= {}", p(1)),
            list: format!(
                "SELECT {listed_id}, {columns} FROM {table} WHERE {id} > {} AND {id} LIKE {} \
                 ESCAPE '!' AND {expiry} > {} ORDER BY {id} LIMIT {}",
                p(1),
                p(2),
                p(3),
                p(4)
            ),
            probe: format!("SELECT {id}, {columns} FROM {table} WHERE 1 = 0"),
            create_table,
            create_index,
            table,
            id,
            data,
            expiry,
            version,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_quotes_its_names() {
        let mapping: TableMapping = "schema=s,table=t,id=i,data=d,expiry=e,version=v"
            .parse()
            .unwrap();
        let sql = Statements::new(Dialect::Postgres, &mapping);
        assert_eq!(
            sql.select,
            "SELECT \"d\", \"e\", \"v\" FROM \"s\".\"t\" WHERE \"i\" = $1 AND \"e\" > $2"
        );
        let sql = Statements::new(Dialect::MySql, &mapping);
        assert_eq!(
            sql.delete_batch,
            "DELETE FROM `s`.`t` WHERE `e` <= ? LIMIT ?"
        );
        let sql = Statements::new(Dialect::Sqlite, &mapping);
        assert_eq!(
            sql.create_index,
            "CREATE INDEX IF NOT EXISTS `s`.`t_e_idx` ON `t` (`e`)"
        );
    }
}
