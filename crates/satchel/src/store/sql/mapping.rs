//! Where the sessions live: [`TableMapping`], the validated schema, table and column names,
//! and [`MappingError`].

use std::fmt;
use std::str::FromStr;

use super::{DEFAULT_TABLE, MAX_NAME_LEN};

/// Where the sessions live in the database: the schema, the table and the names of its
/// columns (SESSION_SQLALCHEMY_TABLE and SESSION_SQLALCHEMY_MODEL).
///
/// Every name is validated when it is set: ASCII letters, digits and underscores, not
/// starting with a digit, at most [`MAX_NAME_LEN`] characters. The stores quote names
/// for their dialect, so reserved words are fine.
///
/// The string form, as SESSION_SQLALCHEMY_MODEL takes it, is a comma-separated list of
/// `field=name` pairs with the fields `schema`, `table`, `id`, `data`, `expiry`,
/// `version` and `index`; fields left out keep their defaults. [`Display`](fmt::Display)
/// writes the form back with every column named.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::TableMapping;
///
/// let mapping: TableMapping =
///     "schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at".parse()?;
/// assert_eq!(mapping.schema(), Some("public"));
/// assert_eq!(mapping.table(), "web_sessions");
/// assert_eq!(mapping.id_column(), "session_id");
/// assert_eq!(mapping.version_column(), "version");
/// assert_eq!(mapping.index(), "web_sessions_expires_at_idx");
///
/// // The same in code:
/// let built = TableMapping::new("web_sessions")?
///     .with_schema("public")?
///     .with_id_column("session_id")?
///     .with_data_column("payload")?
///     .with_expiry_column("expires_at")?;
/// assert_eq!(built, mapping);
///
/// // Names are never spliced into SQL unchecked.
/// assert!(TableMapping::new("users; drop table x").is_err());
/// # Ok::<_, satchel::store::sql::MappingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMapping {
    pub(super) schema: Option<String>,
    pub(super) table: String,
    pub(super) id: String,
    pub(super) data: String,
    pub(super) expiry: String,
    pub(super) version: String,
    index: Option<String>,
}

/// Why a [`TableMapping`] cannot be built or parsed.
///
/// # Examples
///
/// ```
/// use satchel::store::sql::{MappingError, TableMapping};
///
/// let error = "table=sessions,colour=blue".parse::<TableMapping>().unwrap_err();
/// assert!(matches!(error, MappingError::UnknownField(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A name is empty, too long, or has characters other than ASCII letters, digits and
    /// underscores (or starts with a digit).
    #[error(
        "invalid {field} name {name:?}: use 1 to {MAX_NAME_LEN} ASCII letters, digits and \
         underscores, not starting with a digit"
    )]
    InvalidName {
        /// What the name is for: `table`, `schema`, `id` column, …
        field: &'static str,
        /// The name as given.
        name: String,
    },
    /// An entry of the string form is not a `field=name` pair.
    #[error("invalid table mapping entry {0:?}: expected field=name pairs separated by commas")]
    Malformed(String),
    /// The string form names a field that does not exist.
    #[error(
        "unknown table mapping field {0:?}: expected schema, table, id, data, expiry, version or index"
    )]
    UnknownField(String),
    /// The string form gives a field twice.
    #[error("table mapping field {0} is given twice")]
    DuplicateField(&'static str),
    /// Two columns have the same name.
    #[error("the {0} and {1} columns must have different names")]
    SameColumn(&'static str, &'static str),
}

impl TableMapping {
    /// The default layout in `table`: columns `id`, `data`, `expiry` and `version`, in the
    /// connection's default schema.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `table` is not a valid name.
    pub fn new(table: &str) -> Result<Self, MappingError> {
        Ok(Self {
            schema: None,
            table: checked("table", table)?,
            id: "id".to_owned(),
            data: "data".to_owned(),
            expiry: "expiry".to_owned(),
            version: "version".to_owned(),
            index: None,
        })
    }

    /// Parses the string form (see the [type documentation](Self)), taking the table
    /// from `table` unless the string names one.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::store::sql::TableMapping;
    ///
    /// let mapping = TableMapping::parse_with_table("id=sid", "app_sessions")?;
    /// assert_eq!((mapping.table(), mapping.id_column()), ("app_sessions", "sid"));
    /// # Ok::<_, satchel::store::sql::MappingError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MappingError`] when an entry is malformed, unknown, repeated or names an invalid
    /// name, or two columns share a name.
    pub fn parse_with_table(text: &str, table: &str) -> Result<Self, MappingError> {
        let mut given: [Option<&str>; 7] = [None; 7];
        const FIELDS: [&str; 7] = [
            "schema", "table", "id", "data", "expiry", "version", "index",
        ];
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (field, name) = entry
                .split_once('=')
                .ok_or_else(|| MappingError::Malformed(entry.to_owned()))?;
            let field = field.trim().to_ascii_lowercase();
            let slot = FIELDS
                .iter()
                .position(|known| *known == field)
                .ok_or(MappingError::UnknownField(field))?;
            if given[slot].replace(name.trim()).is_some() {
                return Err(MappingError::DuplicateField(FIELDS[slot]));
            }
        }
        let [schema, own_table, id, data, expiry, version, index] = given;
        let mut mapping = Self::new(own_table.unwrap_or(table))?;
        if let Some(schema) = schema {
            mapping = mapping.with_schema(schema)?;
        }
        if let Some(index) = index {
            mapping = mapping.with_index(index)?;
        }
        mapping.id = checked("id column", id.unwrap_or("id"))?;
        mapping.data = checked("data column", data.unwrap_or("data"))?;
        mapping.expiry = checked("expiry column", expiry.unwrap_or("expiry"))?;
        mapping.version = checked("version column", version.unwrap_or("version"))?;
        mapping.distinct()
    }

    /// Sets the schema (PostgreSQL), database (MySQL) or attached database (SQLite) of the
    /// table. It must exist already.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `schema` is not a valid name.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, MappingError> {
        self.schema = Some(checked("schema", schema)?);
        Ok(self)
    }

    /// Sets the table.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `table` is not a valid name.
    pub fn with_table(mut self, table: &str) -> Result<Self, MappingError> {
        self.table = checked("table", table)?;
        Ok(self)
    }

    /// Sets the column holding the key (prefix and session id).
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_id_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.id = checked("id column", column)?;
        self.distinct()
    }

    /// Sets the column holding the encoded session data.
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_data_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.data = checked("data column", column)?;
        self.distinct()
    }

    /// Sets the column holding the expiry (Unix milliseconds).
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_expiry_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.expiry = checked("expiry column", column)?;
        self.distinct()
    }

    /// Sets the column holding the row's version.
    ///
    /// # Errors
    ///
    /// [`MappingError`] when `column` is not a valid name or is another column's.
    pub fn with_version_column(mut self, column: &str) -> Result<Self, MappingError> {
        self.version = checked("version column", column)?;
        self.distinct()
    }

    /// Sets the name of the index on the expiry column (default
    /// `<table>_<expiry>_idx`, shortened with a hash when longer than [`MAX_NAME_LEN`]).
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`] when `index` is not a valid name.
    pub fn with_index(mut self, index: &str) -> Result<Self, MappingError> {
        self.index = Some(checked("index", index)?);
        Ok(self)
    }

    /// The schema, if one is set.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key column.
    #[must_use]
    pub fn id_column(&self) -> &str {
        &self.id
    }

    /// The data column.
    #[must_use]
    pub fn data_column(&self) -> &str {
        &self.data
    }

    /// The expiry column.
    #[must_use]
    pub fn expiry_column(&self) -> &str {
        &self.expiry
    }

    /// The version column.
    #[must_use]
    pub fn version_column(&self) -> &str {
        &self.version
    }

    /// The name of the index on the expiry column.
    #[must_use]
    pub fn index(&self) -> String {
        if let Some(index) = &self.index {
            return index.clone();
        }
        let name = format!("{}_{}_idx", self.table, self.expiry);
        if name.len() <= MAX_NAME_LEN {
            return name;
        }
        // Deterministic, so that every start finds the index it created before.
        let hash = fnv1a(name.as_bytes()) >> 32;
        format!("{}_{hash:08x}_idx", &self.table[..MAX_NAME_LEN - 13])
    }

    fn distinct(self) -> Result<Self, MappingError> {
        let columns = [
            ("id", &self.id),
            ("data", &self.data),
            ("expiry", &self.expiry),
            ("version", &self.version),
        ];
        for (i, (a, first)) in columns.iter().enumerate() {
            for (b, second) in &columns[i + 1..] {
                if first.eq_ignore_ascii_case(second) {
                    return Err(MappingError::SameColumn(a, b));
                }
            }
        }
        Ok(self)
    }
}

impl Default for TableMapping {
    /// The default layout in [`DEFAULT_TABLE`].
    fn default() -> Self {
        Self {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            id: "id".to_owned(),
            data: "data".to_owned(),
            expiry: "expiry".to_owned(),
            version: "version".to_owned(),
            index: None,
        }
    }
}

impl FromStr for TableMapping {
    type Err = MappingError;

    /// Parses the string form, with [`DEFAULT_TABLE`] unless it names a table.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_with_table(text, DEFAULT_TABLE)
    }
}

impl fmt::Display for TableMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "schema={schema},")?;
        }
        write!(
            f,
            "table={},id={},data={},expiry={},version={}",
            self.table, self.id, self.data, self.expiry, self.version
        )?;
        match &self.index {
            Some(index) => write!(f, ",index={index}"),
            None => Ok(()),
        }
    }
}

/// Checks a name for SQL: 1 to 63 ASCII letters, digits and underscores, not starting
/// with a digit.
pub(super) fn checked(field: &'static str, name: &str) -> Result<String, MappingError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(name.to_owned())
    } else {
        Err(MappingError::InvalidName {
            field,
            name: name.to_owned(),
        })
    }
}

/// 64-bit FNV-1a: a small hash that is the same in every process and release.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in [
            "",
            "users; drop table x",
            "1abc",
            "a-b",
            "a\"b",
            "a`b",
            "tablé",
            &"x".repeat(64),
        ] {
            assert!(TableMapping::new(bad).is_err(), "{bad:?}");
            assert!(
                TableMapping::default().with_id_column(bad).is_err(),
                "{bad:?}"
            );
        }
        for good in ["a", "_x", "Sessions_2", &"x".repeat(63)] {
            assert_eq!(TableMapping::new(good).unwrap().table(), good);
        }
    }

    #[test]
    fn the_string_form_parses_and_round_trips() {
        let mapping: TableMapping =
            " schema=public , table=web_sessions,id=session_id,data=payload,expiry=expires_at, "
                .parse()
                .unwrap();
        assert_eq!(mapping.schema(), Some("public"));
        assert_eq!(mapping.expiry_column(), "expires_at");
        let text = mapping.to_string();
        assert_eq!(
            text,
            "schema=public,table=web_sessions,id=session_id,data=payload,expiry=expires_at,\
             version=version"
        );
        assert_eq!(text.parse::<TableMapping>().unwrap(), mapping);
        assert_eq!("".parse::<TableMapping>().unwrap(), TableMapping::default());

        let errors = [
            ("AppSession", "Malformed"),
            ("table=a,table=b", "DuplicateField"),
            ("colour=blue", "UnknownField"),
            ("id=data", "SameColumn"),
            ("table=users; drop table x", "InvalidName"),
        ];
        for (text, kind) in errors {
            let error = text.parse::<TableMapping>().unwrap_err();
            assert!(format!("{error:?}").starts_with(kind), "{text}: {error:?}");
        }
    }

    #[test]
    fn long_index_names_are_shortened_deterministically() {
        let mapping = TableMapping::new(&"t".repeat(60)).unwrap();
        let index = mapping.index();
        assert_eq!(index.len(), MAX_NAME_LEN);
        assert_eq!(index, mapping.index());
        assert!(checked("index", &index).is_ok());
    }
}
