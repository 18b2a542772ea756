//! Flask-Session 0.7 and 0.8's stored session: `msgspec.msgpack.encode(dict(session))`, one
//! msgpack map with string keys, the same bytes in Redis, memcached, SQL and MongoDB.
//!
//! # What crosses, and how
//!
//! | msgpack (what Python put) | Satchel's [`Data`] (JSON) |
//! | --- | --- |
//! | nil, bool, int, float, str (`None`, `bool`, `int`, `float`, `str`) | the same |
//! | array (`list`, `tuple`, `set`) | an array |
//! | map with string keys (`dict`) | an object |
//! | bin (`bytes`) | `{"$bytes": "<base64>"}` (standard alphabet, padded) |
//! | anything else: an ext value (an aware `datetime` is ext -1), a map with a key that is not a string, a float JSON cannot hold (NaN, ±inf), a string that is not UTF-8 | `{"$msgpack": "<base64 of the value's msgpack>"}`, written back as it was |
//! | the key `_permanent` | not a key: the session's permanent flag |
//!
//! So a value Satchel cannot represent is kept as it was when Satchel writes the
//! session again, never dropped. An object of exactly the shape `{"$bytes": "…"}` or
//! `{"$msgpack": "…"}` (one key, a string of valid base64) is written as what it
//! describes; any other object is a map. A map of that shape that Python wrote is
//! itself kept as `{"$msgpack": …}`, so it goes back as the map it was.
//!
//! Reading refuses what msgspec refuses: trailing bytes after the map, and a top level
//! that is not a map with string keys. Nesting deeper than [`MAX_DEPTH`] is refused too,
//! so a hostile value cannot exhaust the stack.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmpv::Value as Msgpack;
use serde_json::{Map, Number, Value};

use super::{Tagged, tagged};
use crate::error::StoreError;
use crate::record::Data;

/// The key of an object that stands for a `bytes` value.
pub const BYTES: &str = "$bytes";
/// The key of an object that stands for a value kept as its msgpack bytes.
pub const RAW: &str = "$msgpack";
/// Flask's key of the session's permanent flag.
pub const PERMANENT: &str = "_permanent";
/// The deepest nesting read.
pub const MAX_DEPTH: usize = 64;

/// Why a stored value is not a Flask-Session session.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("a Flask session value is not valid msgpack: {0}")]
    Msgpack(#[from] rmpv::decode::Error),
    #[error("a Flask session value has bytes after its map")]
    Trailing,
    #[error("a Flask session value is not a map with string keys")]
    NotAMap,
}

/// The session a Flask-Session value holds: its data, and its permanent flag when the
/// map has `_permanent` (a bool; anything else there is kept as data).
///
/// # Errors
///
/// [`StoreError::Decode`] for bytes that are not one msgpack map with string keys.
///
/// # Examples
///
/// ```
/// use satchel::flask::msgpack;
/// use serde_json::json;
///
/// // What Flask-Session 0.8 stores for a permanent session {"k": "v"}.
/// let stored = b"\x82\xaa_permanent\xc3\xa1k\xa1v";
/// let (data, permanent) = msgpack::decode(stored)?;
/// assert_eq!(permanent, Some(true));
/// assert_eq!(data["k"], json!("v"));
/// assert_eq!(msgpack::encode(&data, permanent)?, stored);
/// # Ok::<_, satchel::StoreError>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<(Data, Option<bool>), StoreError> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
        .map_err(|error| StoreError::decode(Malformed::from(error)))?;
    if !rest.is_empty() {
        return Err(StoreError::decode(Malformed::Trailing));
    }
    let Msgpack::Map(entries) = value else {
        return Err(StoreError::decode(Malformed::NotAMap));
    };
    let mut data = Data::new();
    let mut permanent = None;
    for (key, value) in entries {
        let Msgpack::String(key) = key else {
            return Err(StoreError::decode(Malformed::NotAMap));
        };
        let Some(key) = key.into_str() else {
            return Err(StoreError::decode(Malformed::NotAMap));
        };
        match (key.as_str(), value) {
            (PERMANENT, Msgpack::Boolean(flag)) => permanent = Some(flag),
            (_, value) => {
                data.insert(key, to_json(value)?);
            }
        }
    }
    Ok((data, permanent))
}

/// The Flask-Session value of `data`, with `_permanent` first when `permanent` is set,
/// as Flask writes it.
///
/// # Errors
///
/// [`StoreError::Encode`] only if writing to memory fails, which it does not.
pub fn encode(data: &Data, permanent: Option<bool>) -> Result<Vec<u8>, StoreError> {
    let kept = |key: &&String| !(key.as_str() == PERMANENT && permanent.is_some());
    let len = data.keys().filter(kept).count() + usize::from(permanent.is_some());
    let mut out = Vec::new();
    write_len(&mut out, rmp::encode::write_map_len, len)?;
    if let Some(flag) = permanent {
        rmp::encode::write_str(&mut out, PERMANENT).map_err(StoreError::encode)?;
        rmp::encode::write_bool(&mut out, flag).map_err(StoreError::encode)?;
    }
    for (key, value) in data.iter().filter(|(key, _)| kept(key)) {
        rmp::encode::write_str(&mut out, key).map_err(StoreError::encode)?;
        write_json(&mut out, value)?;
    }
    Ok(out)
}

/// Writes a length with `write` (a map's, an array's), refusing one msgpack cannot hold.
fn write_len(
    out: &mut Vec<u8>,
    write: fn(&mut Vec<u8>, u32) -> Result<rmp::Marker, rmp::encode::ValueWriteError>,
    len: usize,
) -> Result<(), StoreError> {
    let len = u32::try_from(len).map_err(|_| StoreError::encode("too many items for msgpack"))?;
    write(out, len).map_err(StoreError::encode)?;
    Ok(())
}

/// Writes a JSON value as Flask-Session would (see the [module documentation](self)); a
/// kept value goes back byte for byte.
fn write_json(out: &mut Vec<u8>, value: &Value) -> Result<(), StoreError> {
    match value {
        Value::Null => rmp::encode::write_nil(out).map_err(StoreError::encode)?,
        Value::Bool(flag) => rmp::encode::write_bool(out, *flag).map_err(StoreError::encode)?,
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                rmp::encode::write_sint(out, int).map_err(StoreError::encode)?;
            } else if let Some(int) = number.as_u64() {
                rmp::encode::write_uint(out, int).map_err(StoreError::encode)?;
            } else if let Some(float) = number.as_f64() {
                rmp::encode::write_f64(out, float).map_err(StoreError::encode)?;
            }
        }
        Value::String(text) => rmp::encode::write_str(out, text).map_err(StoreError::encode)?,
        Value::Array(items) => {
            write_len(out, rmp::encode::write_array_len, items.len())?;
            for item in items {
                write_json(out, item)?;
            }
        }
        Value::Object(object) => match untagged(object) {
            Some(Tagged::Bytes(bytes)) => {
                rmp::encode::write_bin(out, &bytes).map_err(StoreError::encode)?;
            }
            Some(Tagged::Raw(bytes)) => out.extend_from_slice(&bytes),
            None => {
                write_len(out, rmp::encode::write_map_len, object.len())?;
                for (key, value) in object {
                    rmp::encode::write_str(out, key).map_err(StoreError::encode)?;
                    write_json(out, value)?;
                }
            }
        },
    }
    Ok(())
}

/// Writes a msgpack value as it was read: a string that is not UTF-8 stays a string, a
/// 32-bit float stays one.
fn write_msgpack(out: &mut Vec<u8>, value: &Msgpack) -> Result<(), StoreError> {
    match value {
        Msgpack::Nil => rmp::encode::write_nil(out).map_err(StoreError::encode)?,
        Msgpack::Boolean(flag) => {
            rmp::encode::write_bool(out, *flag).map_err(StoreError::encode)?;
        }
        Msgpack::Integer(int) => {
            if let Some(int) = int.as_i64() {
                rmp::encode::write_sint(out, int).map_err(StoreError::encode)?;
            } else if let Some(int) = int.as_u64() {
                rmp::encode::write_uint(out, int).map_err(StoreError::encode)?;
            }
        }
        Msgpack::F32(float) => rmp::encode::write_f32(out, *float).map_err(StoreError::encode)?,
        Msgpack::F64(float) => rmp::encode::write_f64(out, *float).map_err(StoreError::encode)?,
        Msgpack::String(text) => {
            let bytes = text.as_bytes();
            let len =
                u32::try_from(bytes.len()).map_err(|_| StoreError::encode("a string too long"))?;
            rmp::encode::write_str_len(out, len).map_err(StoreError::encode)?;
            out.extend_from_slice(bytes);
        }
        Msgpack::Binary(bytes) => rmp::encode::write_bin(out, bytes).map_err(StoreError::encode)?,
        Msgpack::Array(items) => {
            write_len(out, rmp::encode::write_array_len, items.len())?;
            for item in items {
                write_msgpack(out, item)?;
            }
        }
        Msgpack::Map(entries) => {
            write_len(out, rmp::encode::write_map_len, entries.len())?;
            for (key, value) in entries {
                write_msgpack(out, key)?;
                write_msgpack(out, value)?;
            }
        }
        Msgpack::Ext(kind, data) => {
            let len = u32::try_from(data.len())
                .map_err(|_| StoreError::encode("an ext value too long"))?;
            rmp::encode::write_ext_meta(out, len, *kind).map_err(StoreError::encode)?;
            out.extend_from_slice(data);
        }
    }
    Ok(())
}

/// A msgpack value as Satchel keeps it (see the [module documentation](self)).
fn to_json(value: Msgpack) -> Result<Value, StoreError> {
    Ok(match value {
        Msgpack::Nil => Value::Null,
        Msgpack::Boolean(flag) => Value::Bool(flag),
        Msgpack::Integer(int) => match (int.as_i64(), int.as_u64()) {
            (Some(int), _) => Value::from(int),
            (None, Some(int)) => Value::from(int),
            (None, None) => raw(&Msgpack::Integer(int))?,
        },
        Msgpack::F32(float) => float_or_raw(f64::from(float), &Msgpack::F32(float))?,
        Msgpack::F64(float) => float_or_raw(float, &Msgpack::F64(float))?,
        Msgpack::String(text) => match text.as_str() {
            Some(text) => Value::String(text.to_owned()),
            None => raw(&Msgpack::String(text))?,
        },
        Msgpack::Binary(bytes) => tagged(BYTES, STANDARD.encode(bytes)),
        Msgpack::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Msgpack::Map(entries) => {
            if entries.iter().all(|(key, _)| key.as_str().is_some()) {
                // A dict that reads as a tagged object is kept as it was: written back
                // as an object, it would come back as what the tag stands for.
                let kept = (entries.len() == 1).then(|| Msgpack::Map(entries.clone()));
                let mut object = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    if let Msgpack::String(key) = key
                        && let Some(key) = key.into_str()
                    {
                        object.insert(key, to_json(value)?);
                    }
                }
                match kept {
                    Some(map) if untagged(&object).is_some() => raw(&map)?,
                    _ => Value::Object(object),
                }
            } else {
                raw(&Msgpack::Map(entries))?
            }
        }
        ext @ Msgpack::Ext(..) => raw(&ext)?,
    })
}

/// A float as a JSON number, or kept as its msgpack when JSON cannot hold it.
fn float_or_raw(float: f64, value: &Msgpack) -> Result<Value, StoreError> {
    match Number::from_f64(float) {
        Some(number) => Ok(Value::Number(number)),
        None => raw(value),
    }
}

/// `{"$msgpack": base64}` of `value`'s bytes.
fn raw(value: &Msgpack) -> Result<Value, StoreError> {
    let mut bytes = Vec::new();
    write_msgpack(&mut bytes, value)?;
    Ok(tagged(RAW, STANDARD.encode(bytes)))
}

/// What an object stands for, if it is of the shape of a `{"$bytes": …}` or
/// `{"$msgpack": …}` (for the latter, when its bytes are one whole msgpack value).
fn untagged(object: &Map<String, Value>) -> Option<Tagged> {
    super::untagged(object, RAW, |bytes| {
        let mut rest = bytes;
        rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH).is_ok() && rest.is_empty()
    })
}

/// Reads arbitrary bytes as a stored Flask session (fuzzing): what reads writes back, and
/// reads again to the same session.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    super::fuzz_round_trip(bytes, decode, encode);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What Flask-Session 0.8 stored for the research's worked example (182 bytes, the
    /// same in Redis, memcached and SQLite): `../shared/research/flask_session_formats.md`.
    const WORKED: &str = "8caa5f7065726d616e656e74c3a1692aa173a668c3a96c6c6fa66e657374656483a16193010281a162c0\
        a174c3a166cb3ff8000000000000a36c73749301a374776fcb4008000000000000a3747570920102a162\
        c40500ff62696ea864745f6177617265d7ffa1dcd42065937d25a864745f6e61697665b3323032342d30\
        312d30325430333a30343a3035a3626967cf0000010000000000a36e6567fba85f666c61736865739192\
        a4696e666fa86869207468657265";

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_worked_example_reads_as_flask_wrote_it_and_survives_a_rewrite() {
        let (data, permanent) = decode(&hex(WORKED)).unwrap();
        assert_eq!(permanent, Some(true));
        assert_eq!(data["i"], json!(42));
        assert_eq!(data["s"], json!("héllo"));
        assert_eq!(
            data["nested"],
            json!({"a": [1, 2, {"b": null}], "t": true, "f": 1.5})
        );
        assert_eq!(data["lst"], json!([1, "two", 3.0]));
        assert_eq!(data["tup"], json!([1, 2]));
        assert_eq!(data["b"], json!({"$bytes": "AP9iaW4="}));
        assert_eq!(data["dt_aware"], json!({"$msgpack": "1/+h3NQgZZN9JQ=="}));
        assert_eq!(data["dt_naive"], json!("2024-01-02T03:04:05"));
        assert_eq!(data["big"], json!(1_099_511_627_776_u64));
        assert_eq!(data["neg"], json!(-5));
        assert_eq!(data["_flashes"], json!([["info", "hi there"]]));
        assert_eq!(data.len(), 11);

        // Written again, it reads back the same: the datetime and the bytes included.
        let again = encode(&data, permanent).unwrap();
        assert_eq!(decode(&again).unwrap(), (data, permanent));
        assert_eq!(
            &again[..12],
            &hex(WORKED)[..12],
            "_permanent first, as Flask"
        );
    }

    #[test]
    fn what_json_cannot_hold_is_kept_as_it_was() {
        // {1: "x"}, NaN, an ext of type 5, and a string that is not UTF-8 (a fuzzing find:
        // it was written back as bytes, and read as `bytes` the next time).
        let odd = [
            hex("8101a178"),
            hex("cb7ff8000000000000"),
            hex("d40561"),
            hex("a4696e9a6f"),
            hex("91a4696e9a6f"),
        ];
        for value in odd {
            let mut stored = hex("81a176");
            stored.extend_from_slice(&value);
            let (data, _) = decode(&stored).unwrap();
            assert!(data["v"].to_string().contains(RAW), "{:?}", data["v"]);
            assert_eq!(
                encode(&data, None).unwrap(),
                stored,
                "written back as it was"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let deep = [vec![0x91; MAX_DEPTH + 2], vec![0xc0]].concat();
        for bad in [
            hex(""),
            hex("c0"),
            hex("81a161"),
            hex("81a161c0c0"),
            hex("8101c0"),
            hex("81a1ff"),
            [hex("81a161"), deep].concat(),
        ] {
            assert!(
                matches!(decode(&bad), Err(StoreError::Decode(_))),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn a_python_dict_shaped_like_a_tag_is_kept_as_it_was() {
        // {"d": {"$bytes": "AAAA"}}: a dict Python wrote, not bytes.
        let stored = hex("81a16481a6246279746573a441414141");
        let (data, _) = decode(&stored).unwrap();
        assert!(data["d"].get(RAW).is_some(), "{data:?}");
        assert_eq!(encode(&data, None).unwrap(), stored);
    }

    #[test]
    fn tagged_objects_of_another_shape_stay_maps() {
        let data = Data::from([
            ("two".to_owned(), json!({"$bytes": "AA==", "x": 1})),
            ("bad".to_owned(), json!({"$bytes": "not base64!"})),
            ("num".to_owned(), json!({"$bytes": 5})),
        ]);
        let (back, _) = decode(&encode(&data, None).unwrap()).unwrap();
        assert_eq!(back, data);
    }
}
