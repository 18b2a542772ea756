//! Flask-Session 0.6 and earlier's stored session, and Flask Unchained's: a pickled dict,
//! `pickle.dumps(dict(session))` (Flask Unchained: `dill.dumps`, the same bytes for plain
//! values), protocol 4 in Redis, SQL and MongoDB, protocol 0 in memcached up to
//! Flask-Session 0.5.
//!
//! # Read, never run
//!
//! `pickle.loads` imports and calls whatever a pickle names, so whoever can write to the
//! store can run code in every Flask process that reads it. Satchel runs nothing. It reads
//! a pickle of protocol 0 to 5 with a small stack machine of its own that knows the
//! opcodes of plain data (None, bools, ints, floats, strings, bytes, lists, dicts, tuples,
//! sets, the memo). A value built with an opcode that would import, call or build an
//! object (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1, EXT2,
//! EXT4, PERSID, BINPERSID, NEXT_BUFFER, READONLY_BUFFER) is never built: it is kept as
//! the opcodes that build it, for Python to build when it reads the session again.
//!
//! # What crosses, and how
//!
//! | pickle (what Python put) | Satchel's [`Data`] (JSON) |
//! | --- | --- |
//! | `None`, `bool`, `int` that fits an i64 or a u64, finite `float`, `str` | the same |
//! | `list` | an array |
//! | `dict` with `str` keys | an object |
//! | `bytes` (protocol 3 and above) | `{"$bytes": "<base64>"}` (standard alphabet, padded) |
//! | anything else: a tuple (a flashed message is one), a set, a frozenset, a bytearray, an `int` beyond 64 bits, NaN and ±inf, a `str` with a lone surrogate, a Python 2 `str`, a dict with a key that is not a `str`, and every object (a `datetime`, a `Decimal`, a `Markup`, and `bytes` as protocols 0 to 2 write them: a call of `_codecs.encode`) | `{"$pickle": "<base64 of opcodes>"}`, written back as it was |
//! | the key `_permanent` | not a key: the session's permanent flag |
//!
//! So a value Satchel cannot represent is kept as it was when Satchel writes the session
//! again: never dropped, and never turned into another type (a tuple is not written back
//! as a list). A Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING: only a Python 2
//! process writes them) is kept too: Python 3 reads one as a `str` when it is ASCII and
//! fails otherwise, so neither a string nor bytes would say what it is. A dict of exactly
//! the shape of `{"$bytes": …}` or `{"$pickle": …}` is kept as it was, so that it is not
//! written back as what such an object stands for.
//!
//! Writing, an object of exactly the shape `{"$bytes": "…"}` (one key, a string of valid
//! base64) is written as `bytes`, and one of the shape `{"$pickle": "…"}` as its opcodes
//! when they push exactly one value and use no memo; any other object is a dict (the
//! `{"$msgpack": …}` objects of [`msgpack`](super::msgpack) included).
//!
//! # A kept value
//!
//! `{"$pickle": …}` holds opcodes that push exactly one value onto the stack of the pickle
//! they are written into, whatever comes before them: the opcodes that built it, each memo
//! GET replaced by the opcodes of the value it fetched, and the memo PUTs, FRAMEs and
//! PROTOs left out. Python maps Python 2's module names (`__builtin__`, `copy_reg`) onto
//! Python 3's only in a pickle of protocol 0 to 2, so an opcode that looks a name up
//! (GLOBAL, STACK_GLOBAL, INST, EXT1, EXT2, EXT4) in such a pickle is kept between a PROTO
//! of that protocol and a PROTO 4: the name is looked up as when the session was read.
//!
//! # What is written
//!
//! Protocol 4, what Python 3.8 to 3.13's `pickle.dumps` and `dill.dumps` write, and so what
//! Flask-Session 0.6 and Flask Unchained store. Flask-Session 0.5 and earlier write
//! protocol 0 to memcached but read any protocol there too, so protocol 0 is only read.
//! The bytes are PROTO 4; one FRAME around the rest when the rest takes 4 bytes or more;
//! the dict, with `_permanent` first when the permanent flag is set, as Flask writes it,
//! then the other keys in order; STOP. No memo opcodes are written: they are optional, and
//! Python leaves them out too when `Pickler.fast` is set. Items are batched as Python's
//! pickler batches them: a single item with APPEND or SETITEM, more between a MARK and an
//! APPENDS or SETITEMS, 1000 at most to a batch (a dict whose items fill their last batch
//! ends with an empty one, as in Python). Python starts a new frame every 64 KiB and
//! writes a string or bytes of 64 KiB or more outside any frame; Satchel writes one frame
//! whatever the size, which Python reads the same. So for a session of plain values the
//! bytes are those of `pickle.Pickler(file, 4)` with `fast = True` given the same dict in
//! the same order.
//!
//! # What is refused
//!
//! Reading refuses a byte that is no opcode, a protocol above 5, a pickle cut short or
//! followed by more bytes, and a top level that is not a dict with `str` keys; what
//! Python itself refuses about an opcode (too few items on the stack, no MARK, a memo
//! entry never stored, an argument it cannot read); nesting deeper than [`MAX_DEPTH`]; a
//! value changed after a memo GET or a DUP pushed it again, as only a recursive structure
//! (a list that holds itself) is pickled, and Satchel cannot represent one; and a pickle
//! whose values, once each memo GET is replaced by what it fetches, would take more than
//! 16 times its own length plus 4 KiB (a GET may fetch a value that holds GETs, so
//! replacing them could otherwise grow exponentially). INT and LONG are read as Python
//! writes them (`I42\n`, `I01\n` for True, `L42L\n`): the other spellings Python's
//! parser takes (`I0x2a\n`, and `I052\n`, which it reads as octal) are refused rather than
//! guessed at. Items left on the stack under the dict at STOP are ignored, as Python
//! ignores them.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

pub use super::msgpack::{BYTES, MAX_DEPTH, PERMANENT};
use super::{Tagged, tagged};
use crate::error::StoreError;
use crate::record::Data;

/// The key of an object that stands for a value kept as the pickle opcodes that build it.
pub const RAW: &str = "$pickle";

/// How many times its own length a pickle may grow to once each memo GET is replaced by
/// the opcodes of what it fetches; [`EXPANSION_ALLOWANCE`] bytes more are allowed.
const EXPANSION: usize = 16;
/// See [`EXPANSION`].
const EXPANSION_ALLOWANCE: usize = 4096;
/// The most items Python's pickler puts between a MARK and its APPENDS or SETITEMS.
const BATCH: usize = 1000;
/// The highest protocol Python knows.
const HIGHEST_PROTOCOL: u8 = 5;
/// The protocol written.
const PROTOCOL: u8 = 4;
/// The lowest protocol under which Python takes module names as they are.
const PYTHON_3_NAMES: u8 = 3;
/// Python leaves out the FRAME of fewer bytes.
const FRAME_MIN: usize = 4;

/// Declares the opcodes, named as in Python's `pickle` module, and [`op::name`].
macro_rules! opcodes {
    ($($name:ident = $code:expr,)*) => {
        $(pub(super) const $name: u8 = $code;)*

        /// An opcode's name in Python's `pickle` module.
        pub(super) fn name(code: u8) -> &'static str {
            match code {
                $($name => stringify!($name),)*
                _ => "(none)",
            }
        }
    };
}

/// Pickle's opcodes.
mod op {
    opcodes! {
        // Protocols 0 and 1.
        MARK = b'(',
        STOP = b'.',
        POP = b'0',
        POP_MARK = b'1',
        DUP = b'2',
        FLOAT = b'F',
        INT = b'I',
        BININT = b'J',
        BININT1 = b'K',
        LONG = b'L',
        BININT2 = b'M',
        NONE = b'N',
        PERSID = b'P',
        BINPERSID = b'Q',
        REDUCE = b'R',
        STRING = b'S',
        BINSTRING = b'T',
        SHORT_BINSTRING = b'U',
        UNICODE = b'V',
        BINUNICODE = b'X',
        APPEND = b'a',
        BUILD = b'b',
        GLOBAL = b'c',
        DICT = b'd',
        EMPTY_DICT = b'}',
        APPENDS = b'e',
        GET = b'g',
        BINGET = b'h',
        INST = b'i',
        LONG_BINGET = b'j',
        LIST = b'l',
        EMPTY_LIST = b']',
        OBJ = b'o',
        PUT = b'p',
        BINPUT = b'q',
        LONG_BINPUT = b'r',
        SETITEM = b's',
        TUPLE = b't',
        EMPTY_TUPLE = b')',
        SETITEMS = b'u',
        BINFLOAT = b'G',
        // Protocol 2.
        PROTO = 0x80,
        NEWOBJ = 0x81,
        EXT1 = 0x82,
        EXT2 = 0x83,
        EXT4 = 0x84,
        TUPLE1 = 0x85,
        TUPLE2 = 0x86,
        TUPLE3 = 0x87,
        NEWTRUE = 0x88,
        NEWFALSE = 0x89,
        LONG1 = 0x8a,
        LONG4 = 0x8b,
        // Protocol 3.
        BINBYTES = b'B',
        SHORT_BINBYTES = b'C',
        // Protocol 4.
        SHORT_BINUNICODE = 0x8c,
        BINUNICODE8 = 0x8d,
        BINBYTES8 = 0x8e,
        EMPTY_SET = 0x8f,
        ADDITEMS = 0x90,
        FROZENSET = 0x91,
        NEWOBJ_EX = 0x92,
        STACK_GLOBAL = 0x93,
        MEMOIZE = 0x94,
        FRAME = 0x95,
        // Protocol 5.
        BYTEARRAY8 = 0x96,
        NEXT_BUFFER = 0x97,
        READONLY_BUFFER = 0x98,
    }
}

/// Why a stored value is not a pickled Flask session.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("a Flask session value ends inside its pickle")]
    Truncated,
    #[error("a Flask session value has bytes after its pickle")]
    Trailing,
    #[error("a Flask session value is not a pickled dict with string keys")]
    NotADict,
    #[error("a Flask session value has byte {byte:#04x} at {at}, which is no pickle opcode")]
    Unknown { byte: u8, at: usize },
    #[error("a Flask session value's pickle opcode {name} at byte {at} {problem}")]
    Opcode {
        name: &'static str,
        at: usize,
        problem: Problem,
    },
    #[error("a Flask session value nests deeper than {max} levels", max = MAX_DEPTH)]
    TooDeep,
    #[error("a Flask session value would take more than {limit} bytes with its memo replaced")]
    TooLarge { limit: usize },
}

/// What is wrong with one opcode.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum Problem {
    #[error("finds too few items on the stack")]
    Underflow,
    #[error("finds no MARK")]
    NoMark,
    #[error("has an argument Python would not read")]
    Argument,
    #[error("asks for a protocol above 5")]
    Protocol,
    #[error("fetches a memo entry never stored")]
    Memo,
    #[error("changes a value after it was pushed again, as only a recursive structure is pickled")]
    Shared,
    #[error("applies to a value of another type")]
    Type,
    #[error("makes a list, dict or set a key")]
    Unhashable,
    #[error("has no place in a kept value")]
    Fragment,
}

/// A value the pickle builds, as far as Satchel tells values apart.
#[derive(Debug)]
enum Kind {
    None,
    Bool(bool),
    /// An int; `None` when an i128 cannot hold it.
    Int(Option<i128>),
    Float(f64),
    /// A str; `None` when it holds a lone surrogate, which a Rust string cannot.
    Str(Option<String>),
    /// A bytes object: where its payload lies in the input.
    Bytes {
        start: usize,
        end: usize,
    },
    /// The items, in order.
    List(Vec<usize>),
    /// The key and value pairs, in the order the pickle sets them.
    Dict(Vec<(usize, usize)>),
    Set,
    /// A value no opcode changes and JSON cannot hold: a tuple, a frozenset, a bytearray,
    /// a Python 2 str.
    Inert {
        hashable: bool,
    },
    /// What GLOBAL, REDUCE, NEWOBJ and their like would build: nothing is known of it.
    Object,
}

/// A piece of the opcodes of a value.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Bytes of the input, as they were.
    Input { start: usize, end: usize },
    /// A MARK.
    Mark,
    /// A PROTO of this protocol.
    Proto(u8),
    /// The opcodes of another value.
    Value(usize),
}

/// A value the pickle builds: what it is, and the opcodes that push it.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// The opcodes that push this value onto an empty stack (see the module docs).
    recipe: Vec<Part>,
    /// 0 for a value without parts, else one more than its deepest part.
    depth: usize,
    /// Whether a memo GET or a DUP pushed it again: it must not change after that.
    shared: bool,
}

/// What a missing node reads as. Nodes are never removed and every index comes from
/// their list, so none is ever missing.
static MISSING: Node = Node {
    kind: Kind::None,
    recipe: Vec::new(),
    depth: 0,
    shared: false,
};

/// How an opcode adds to the value under its items.
#[derive(Debug, Clone, Copy)]
enum Growth {
    /// APPEND, APPENDS: to a list.
    Append,
    /// SETITEM, SETITEMS: key and value pairs, to a dict.
    SetItems,
    /// ADDITEMS: to a set.
    AddItems,
    /// BUILD: a state, to an object.
    Build,
}

/// The stack machine that reads a pickle (or the opcodes of one kept value), building
/// nothing but [`Node`]s.
#[derive(Debug)]
struct Reader<'a> {
    input: &'a [u8],
    /// Where the next opcode starts.
    at: usize,
    /// The opcode being read, and where it starts.
    op: u8,
    op_at: usize,
    /// The protocol of the last PROTO (Python's initial 0 in a pickle).
    proto: u8,
    /// Whether the input is a kept value's opcodes rather than a whole pickle.
    fragment: bool,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    /// The stack's length at each MARK still open.
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], fragment: bool) -> Self {
        Self {
            input,
            at: 0,
            op: 0,
            op_at: 0,
            // A kept value is written into Satchel's protocol 4 pickles.
            proto: if fragment { PROTOCOL } else { 0 },
            fragment,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// Reads the whole input: the value STOP pops (a pickle), or the one value the
    /// opcodes leave (a kept value).
    fn run(&mut self) -> Result<usize, Malformed> {
        loop {
            let Some(&op) = self.input.get(self.at) else {
                return self.finish();
            };
            self.op = op;
            self.op_at = self.at;
            self.at += 1;
            if let Some(kind) = self.scalar_op()? {
                self.push(kind, &[], false)?;
            } else if !(self.container_op()? || self.object_op()?)
                && let Some(root) = self.control_op()?
            {
                return Ok(root);
            }
        }
    }

    /// The end of the input: only a kept value's opcodes end without STOP, and then with
    /// exactly one value, no MARK open, under a protocol that takes names as they are.
    fn finish(&self) -> Result<usize, Malformed> {
        match *self.stack.as_slice() {
            [value] if self.fragment && self.marks.is_empty() && self.proto >= PYTHON_3_NAMES => {
                Ok(value)
            }
            _ => Err(Malformed::Truncated),
        }
    }

    /// Reads the argument of an opcode that pushes a value without taking any from the
    /// stack; `None` for another opcode.
    fn scalar_op(&mut self) -> Result<Option<Kind>, Malformed> {
        let kind = match self.op {
            op::NONE => Kind::None,
            op::NEWTRUE => Kind::Bool(true),
            op::NEWFALSE => Kind::Bool(false),
            op::INT => match self.line()? {
                b"00" => Kind::Bool(false),
                b"01" => Kind::Bool(true),
                text => Kind::Int(self.int_argument(text)?),
            },
            op::LONG => {
                let text = self.line()?;
                Kind::Int(self.int_argument(text.strip_suffix(b"L").unwrap_or(text))?)
            }
            op::BININT => Kind::Int(Some(i128::from(i32::from_le_bytes(self.array()?)))),
            op::BININT1 => Kind::Int(Some(i128::from(self.byte()?))),
            op::BININT2 => Kind::Int(Some(i128::from(u16::from_le_bytes(self.array()?)))),
            op::LONG1 => {
                let len = usize::from(self.byte()?);
                Kind::Int(twos_complement(self.take(len)?))
            }
            op::LONG4 => {
                let len = self.signed_len()?;
                Kind::Int(twos_complement(self.take(len)?))
            }
            op::FLOAT => {
                let text = self.line()?;
                Kind::Float(float_text(text).ok_or_else(|| self.fail(Problem::Argument))?)
            }
            op::BINFLOAT => Kind::Float(f64::from_be_bytes(self.array()?)),
            op::UNICODE => {
                let text = self.line()?;
                Kind::Str(raw_unicode_escape(text).ok_or_else(|| self.fail(Problem::Argument))?)
            }
            op::SHORT_BINUNICODE => {
                let len = usize::from(self.byte()?);
                self.text(len)?
            }
            op::BINUNICODE => {
                let len = self.len4()?;
                self.text(len)?
            }
            op::BINUNICODE8 => {
                let len = self.len8()?;
                self.text(len)?
            }
            op::SHORT_BINBYTES => {
                let len = usize::from(self.byte()?);
                self.bytes(len)?
            }
            op::BINBYTES => {
                let len = self.len4()?;
                self.bytes(len)?
            }
            op::BINBYTES8 => {
                let len = self.len8()?;
                self.bytes(len)?
            }
            op::BYTEARRAY8 => {
                let len = self.len8()?;
                self.take(len)?;
                Kind::Inert { hashable: false }
            }
            op::STRING => {
                let text = self.line()?;
                if !matches!(text, [first @ (b'\'' | b'"'), .., last] if first == last) {
                    return Err(self.fail(Problem::Argument));
                }
                Kind::Inert { hashable: true }
            }
            op::SHORT_BINSTRING => {
                let len = usize::from(self.byte()?);
                self.take(len)?;
                Kind::Inert { hashable: true }
            }
            op::BINSTRING => {
                let len = self.signed_len()?;
                self.take(len)?;
                Kind::Inert { hashable: true }
            }
            op::EMPTY_LIST => Kind::List(Vec::new()),
            op::EMPTY_DICT => Kind::Dict(Vec::new()),
            op::EMPTY_SET => Kind::Set,
            op::EMPTY_TUPLE => Kind::Inert { hashable: true },
            op::GLOBAL => {
                self.name_line()?;
                self.name_line()?;
                Kind::Object
            }
            op::EXT1 => {
                let code = self.byte()?;
                self.extension(i64::from(code))?
            }
            op::EXT2 => {
                let code = u16::from_le_bytes(self.array()?);
                self.extension(i64::from(code))?
            }
            op::EXT4 => {
                let code = i32::from_le_bytes(self.array()?);
                self.extension(i64::from(code))?
            }
            op::PERSID => {
                self.line()?;
                Kind::Object
            }
            op::NEXT_BUFFER => Kind::Object,
            _ => return Ok(None),
        };
        Ok(Some(kind))
    }

    /// Carries out an opcode that builds or fills a list, dict, tuple or set; `false` for
    /// another opcode.
    fn container_op(&mut self) -> Result<bool, Malformed> {
        match self.op {
            op::APPEND => {
                let item = self.pop()?;
                self.grow(Growth::Append, &[item], false)?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.grow(Growth::Append, &items, true)?;
            }
            op::SETITEM => {
                let pair = self.pops::<2>()?;
                self.grow(Growth::SetItems, &pair, false)?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                self.grow(Growth::SetItems, &items, true)?;
            }
            op::ADDITEMS => {
                let items = self.pop_mark()?;
                self.grow(Growth::AddItems, &items, true)?;
            }
            op::LIST => {
                let items = self.pop_mark()?;
                self.push(Kind::List(items.clone()), &items, true)?;
            }
            op::DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(&items)?;
                self.push(Kind::Dict(pairs), &items, true)?;
            }
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.tuple(&items, true)?;
            }
            op::TUPLE1 => {
                let items = self.pops::<1>()?;
                self.tuple(&items, false)?;
            }
            op::TUPLE2 => {
                let items = self.pops::<2>()?;
                self.tuple(&items, false)?;
            }
            op::TUPLE3 => {
                let items = self.pops::<3>()?;
                self.tuple(&items, false)?;
            }
            op::FROZENSET => {
                let items = self.pop_mark()?;
                if !items.iter().all(|&item| self.hashable(item)) {
                    return Err(self.fail(Problem::Unhashable));
                }
                self.push(Kind::Inert { hashable: true }, &items, true)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Records an opcode that would import, call or build an object; `false` for another
    /// opcode.
    fn object_op(&mut self) -> Result<bool, Malformed> {
        match self.op {
            op::REDUCE | op::NEWOBJ => {
                let items = self.pops::<2>()?;
                self.push(Kind::Object, &items, false)?;
            }
            op::NEWOBJ_EX => {
                let items = self.pops::<3>()?;
                self.push(Kind::Object, &items, false)?;
            }
            op::STACK_GLOBAL => {
                let items = self.pops::<2>()?;
                if !items
                    .iter()
                    .all(|&item| matches!(self.node(item).kind, Kind::Str(_)))
                {
                    return Err(self.fail(Problem::Type));
                }
                self.push(Kind::Object, &items, false)?;
            }
            op::BINPERSID | op::READONLY_BUFFER => {
                let items = self.pops::<1>()?;
                self.push(Kind::Object, &items, false)?;
            }
            op::OBJ => {
                let items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(self.fail(Problem::Underflow));
                }
                self.push(Kind::Object, &items, true)?;
            }
            op::INST => {
                self.name_line()?;
                self.name_line()?;
                let items = self.pop_mark()?;
                self.push(Kind::Object, &items, true)?;
            }
            op::BUILD => {
                let state = self.pop()?;
                self.grow(Growth::Build, &[state], false)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Carries out a stack, memo, framing or protocol opcode, or STOP; the value STOP
    /// pops.
    fn control_op(&mut self) -> Result<Option<usize>, Malformed> {
        match self.op {
            op::MARK => self.marks.push(self.stack.len()),
            op::POP => {
                // As in Python, POP on an empty stack above a MARK removes the MARK.
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            op::POP_MARK => {
                self.pop_mark()?;
            }
            op::DUP => {
                let item = self.top()?;
                self.push_again(item);
            }
            op::PROTO => {
                let protocol = self.byte()?;
                if protocol > HIGHEST_PROTOCOL {
                    return Err(self.fail(Problem::Protocol));
                }
                self.proto = protocol;
            }
            op::STOP
            | op::FRAME
            | op::PUT
            | op::BINPUT
            | op::LONG_BINPUT
            | op::MEMOIZE
            | op::GET
            | op::BINGET
            | op::LONG_BINGET
                if self.fragment =>
            {
                return Err(self.fail(Problem::Fragment));
            }
            op::STOP => {
                let root = self.pop()?;
                return if self.at == self.input.len() {
                    Ok(Some(root))
                } else {
                    Err(Malformed::Trailing)
                };
            }
            op::FRAME => {
                // The frame must be there; its bounds mean nothing else.
                let len = self.len8()?;
                if len > self.input.len().saturating_sub(self.at) {
                    return Err(Malformed::Truncated);
                }
            }
            op::PUT => {
                let text = self.line()?;
                let index = memo_index(text).ok_or_else(|| self.fail(Problem::Argument))?;
                self.memo_put(index)?;
            }
            op::BINPUT => {
                let index = self.byte()?;
                self.memo_put(u64::from(index))?;
            }
            op::LONG_BINPUT => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_put(u64::from(index))?;
            }
            op::MEMOIZE => {
                let index =
                    u64::try_from(self.memo.len()).map_err(|_| self.fail(Problem::Argument))?;
                self.memo_put(index)?;
            }
            op::GET => {
                let text = self.line()?;
                let index = memo_index(text).ok_or_else(|| self.fail(Problem::Argument))?;
                self.memo_get(index)?;
            }
            op::BINGET => {
                let index = self.byte()?;
                self.memo_get(u64::from(index))?;
            }
            op::LONG_BINGET => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_get(u64::from(index))?;
            }
            byte => {
                return Err(Malformed::Unknown {
                    byte,
                    at: self.op_at,
                });
            }
        }
        Ok(None)
    }

    /// Pushes a new value that the current opcode builds from `items` (which followed a
    /// MARK when `mark`).
    fn push(&mut self, kind: Kind, items: &[usize], mark: bool) -> Result<(), Malformed> {
        let depth = self.depth_over(items)?;
        let mut recipe = Vec::with_capacity(items.len() + 4);
        if mark {
            recipe.push(Part::Mark);
        }
        recipe.extend(items.iter().map(|&item| Part::Value(item)));
        self.opcode(&mut recipe);
        self.stack.push(self.nodes.len());
        self.nodes.push(Node {
            kind,
            recipe,
            depth,
            shared: false,
        });
        Ok(())
    }

    /// Adds `items` (which followed a MARK when `mark`) to the value on top of the stack.
    fn grow(&mut self, growth: Growth, items: &[usize], mark: bool) -> Result<(), Malformed> {
        let target = self.top()?;
        let node = self.node(target);
        if node.shared {
            return Err(self.fail(Problem::Shared));
        }
        let pairs = match (&node.kind, growth) {
            (Kind::Dict(_), Growth::SetItems) => self.pairs(items)?,
            (Kind::Object, Growth::SetItems) if !items.len().is_multiple_of(2) => {
                return Err(self.fail(Problem::Argument));
            }
            (Kind::Set, Growth::AddItems) => {
                if !items.iter().all(|&item| self.hashable(item)) {
                    return Err(self.fail(Problem::Unhashable));
                }
                Vec::new()
            }
            (Kind::Object, _) | (Kind::List(_), Growth::Append) => Vec::new(),
            _ => return Err(self.fail(Problem::Type)),
        };
        let depth = self.depth_over(items)?.max(node.depth);
        let mut parts = Vec::with_capacity(items.len() + 4);
        if mark {
            parts.push(Part::Mark);
        }
        parts.extend(items.iter().map(|&item| Part::Value(item)));
        self.opcode(&mut parts);
        if let Some(node) = self.nodes.get_mut(target) {
            node.depth = depth;
            node.recipe.extend(parts);
            match &mut node.kind {
                Kind::List(list) => list.extend_from_slice(items),
                Kind::Dict(entries) => entries.extend(pairs),
                _ => {}
            }
        }
        Ok(())
    }

    /// Pushes a tuple of `items`.
    fn tuple(&mut self, items: &[usize], mark: bool) -> Result<(), Malformed> {
        let hashable = items.iter().all(|&item| self.hashable(item));
        self.push(Kind::Inert { hashable }, items, mark)
    }

    /// The key and value pairs of the items of DICT or SETITEMS, as Python takes them.
    fn pairs(&self, items: &[usize]) -> Result<Vec<(usize, usize)>, Malformed> {
        if !items.len().is_multiple_of(2) {
            return Err(self.fail(Problem::Argument));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            if let [key, value] = *pair {
                if !self.hashable(key) {
                    return Err(self.fail(Problem::Unhashable));
                }
                pairs.push((key, value));
            }
        }
        Ok(pairs)
    }

    /// The current opcode as it was, between PROTO opcodes when it looks a name up under
    /// a protocol that maps Python 2's names (see the module docs).
    fn opcode(&self, recipe: &mut Vec<Part>) {
        let looks_up = matches!(
            self.op,
            op::GLOBAL | op::STACK_GLOBAL | op::INST | op::EXT1 | op::EXT2 | op::EXT4
        );
        let wrapped = looks_up && self.proto < PYTHON_3_NAMES;
        if wrapped {
            recipe.push(Part::Proto(self.proto));
        }
        recipe.push(Part::Input {
            start: self.op_at,
            end: self.at,
        });
        if wrapped {
            recipe.push(Part::Proto(PROTOCOL));
        }
    }

    /// The depth of a value made of `items`, refused beyond [`MAX_DEPTH`].
    fn depth_over(&self, items: &[usize]) -> Result<usize, Malformed> {
        let depth = items
            .iter()
            .map(|&item| self.node(item).depth + 1)
            .max()
            .unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(Malformed::TooDeep);
        }
        Ok(depth)
    }

    /// Whether Python can hash `item`, so make it a dict key or a set member: not a
    /// list, dict, set or bytearray, nor a tuple that holds one.
    fn hashable(&self, item: usize) -> bool {
        match self.node(item).kind {
            Kind::List(_) | Kind::Dict(_) | Kind::Set => false,
            Kind::Inert { hashable } => hashable,
            _ => true,
        }
    }

    fn node(&self, item: usize) -> &Node {
        self.nodes.get(item).unwrap_or(&MISSING)
    }

    /// The stack's length at the last MARK still open.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<usize, Malformed> {
        if self.stack.len() > self.fence()
            && let Some(item) = self.stack.pop()
        {
            return Ok(item);
        }
        Err(self.fail(Problem::Underflow))
    }

    /// The top `N` items, in stack order.
    fn pops<const N: usize>(&mut self) -> Result<[usize; N], Malformed> {
        let mut items = [0; N];
        for slot in items.iter_mut().rev() {
            *slot = self.pop()?;
        }
        Ok(items)
    }

    fn top(&self) -> Result<usize, Malformed> {
        match self.stack.last() {
            Some(&item) if self.stack.len() > self.fence() => Ok(item),
            _ => Err(self.fail(Problem::Underflow)),
        }
    }

    /// The items above the last MARK, which goes.
    fn pop_mark(&mut self) -> Result<Vec<usize>, Malformed> {
        match self.marks.pop() {
            Some(mark) if mark <= self.stack.len() => Ok(self.stack.split_off(mark)),
            _ => Err(self.fail(Problem::NoMark)),
        }
    }

    /// Pushes `item` once more: from now on it must not change.
    fn push_again(&mut self, item: usize) {
        if let Some(node) = self.nodes.get_mut(item) {
            node.shared = true;
        }
        self.stack.push(item);
    }

    fn memo_put(&mut self, index: u64) -> Result<(), Malformed> {
        let item = self.top()?;
        self.memo.insert(index, item);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), Malformed> {
        let item = self
            .memo
            .get(&index)
            .copied()
            .ok_or_else(|| self.fail(Problem::Memo))?;
        self.push_again(item);
        Ok(())
    }

    fn fail(&self, problem: Problem) -> Malformed {
        Malformed::Opcode {
            name: op::name(self.op),
            at: self.op_at,
            problem,
        }
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let input: &'a [u8] = self.input;
        let end = self.at.checked_add(len).ok_or(Malformed::Truncated)?;
        let bytes = input.get(self.at..end).ok_or(Malformed::Truncated)?;
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| Malformed::Truncated)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    /// The bytes up to the next newline, which is passed.
    fn line(&mut self) -> Result<&'a [u8], Malformed> {
        let input: &'a [u8] = self.input;
        let rest = input.get(self.at..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&byte| byte == b'\n')
            .ok_or(Malformed::Truncated)?;
        self.at += len + 1;
        Ok(rest.get(..len).unwrap_or_default())
    }

    /// A module or class name of GLOBAL or INST: Python refuses an empty one.
    fn name_line(&mut self) -> Result<(), Malformed> {
        if self.line()?.is_empty() {
            return Err(self.fail(Problem::Argument));
        }
        Ok(())
    }

    /// A length in 4 bytes, little-endian.
    fn len4(&mut self) -> Result<usize, Malformed> {
        let len = u32::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| Malformed::Truncated)
    }

    /// A length in 8 bytes, little-endian.
    fn len8(&mut self) -> Result<usize, Malformed> {
        let len = u64::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| Malformed::Truncated)
    }

    /// A length in 4 bytes, little-endian and signed (BINSTRING, LONG4): Python refuses a
    /// negative one.
    fn signed_len(&mut self) -> Result<usize, Malformed> {
        let len = i32::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| self.fail(Problem::Argument))
    }

    /// The argument of INT or LONG, as Python writes it.
    fn int_argument(&self, text: &[u8]) -> Result<Option<i128>, Malformed> {
        int_text(text).ok_or_else(|| self.fail(Problem::Argument))
    }

    /// A str of the next `len` bytes, UTF-8 as Python writes it (lone surrogates allowed).
    fn text(&mut self, len: usize) -> Result<Kind, Malformed> {
        let bytes = self.take(len)?;
        surrogate_pass(bytes)
            .map(Kind::Str)
            .ok_or_else(|| self.fail(Problem::Argument))
    }

    /// A bytes object of the next `len` bytes.
    fn bytes(&mut self, len: usize) -> Result<Kind, Malformed> {
        let start = self.at;
        self.take(len)?;
        Ok(Kind::Bytes {
            start,
            end: self.at,
        })
    }

    /// What an EXT opcode of `code` stands for: Python refuses a code below 1.
    fn extension(&self, code: i64) -> Result<Kind, Malformed> {
        if code < 1 {
            return Err(self.fail(Problem::Argument));
        }
        Ok(Kind::Object)
    }

    /// How many bytes the opcodes of `item` take once each memo GET is replaced, counted
    /// once for each value (`sizes` remembers them) and at most `budget` values deep.
    fn size(
        &self,
        item: usize,
        sizes: &mut [Option<usize>],
        budget: usize,
    ) -> Result<usize, Malformed> {
        if let Some(&Some(size)) = sizes.get(item) {
            return Ok(size);
        }
        let budget = budget.checked_sub(1).ok_or(Malformed::TooDeep)?;
        let mut size = 0_usize;
        for part in &self.node(item).recipe {
            let part_size = match *part {
                Part::Input { start, end } => end.saturating_sub(start),
                Part::Mark => 1,
                Part::Proto(_) => 2,
                Part::Value(value) => self.size(value, sizes, budget)?,
            };
            size = size.saturating_add(part_size);
        }
        if let Some(slot) = sizes.get_mut(item) {
            *slot = Some(size);
        }
        Ok(size)
    }

    /// Writes the opcodes that push `item` (see the module docs) to `out`.
    fn expand(&self, item: usize, out: &mut Vec<u8>, budget: usize) -> Result<(), Malformed> {
        let budget = budget.checked_sub(1).ok_or(Malformed::TooDeep)?;
        for part in &self.node(item).recipe {
            match *part {
                Part::Input { start, end } => {
                    out.extend_from_slice(self.input.get(start..end).unwrap_or_default());
                }
                Part::Mark => out.push(op::MARK),
                Part::Proto(protocol) => out.extend_from_slice(&[op::PROTO, protocol]),
                Part::Value(value) => self.expand(value, out, budget)?,
            }
        }
        Ok(())
    }

    /// `item` as Satchel keeps it (see the module documentation), at most `budget` values
    /// deep.
    fn to_json(&self, item: usize, budget: usize) -> Result<Value, Malformed> {
        let budget = budget.checked_sub(1).ok_or(Malformed::TooDeep)?;
        let json = match &self.node(item).kind {
            Kind::None => Some(Value::Null),
            Kind::Bool(flag) => Some(Value::Bool(*flag)),
            Kind::Int(int) => int.and_then(json_int).map(Value::Number),
            Kind::Float(float) => Number::from_f64(*float).map(Value::Number),
            Kind::Str(text) => text.clone().map(Value::String),
            Kind::Bytes { start, end } => {
                let bytes = self.input.get(*start..*end).unwrap_or_default();
                Some(tagged(BYTES, STANDARD.encode(bytes)))
            }
            Kind::List(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|&item| self.to_json(item, budget))
                    .collect::<Result<_, _>>()?,
            )),
            Kind::Dict(pairs) => self.json_object(pairs, budget)?.map(Value::Object),
            Kind::Set | Kind::Inert { .. } | Kind::Object => None,
        };
        match json {
            Some(json) => Ok(json),
            None => self.kept(item),
        }
    }

    /// A dict as a JSON object, unless a key is not a str or the object would have the
    /// shape of a tag.
    fn json_object(
        &self,
        pairs: &[(usize, usize)],
        budget: usize,
    ) -> Result<Option<Map<String, Value>>, Malformed> {
        let keys_are_strings = pairs
            .iter()
            .all(|&(key, _)| matches!(self.node(key).kind, Kind::Str(Some(_))));
        if !keys_are_strings {
            return Ok(None);
        }
        let mut object = Map::new();
        for &(key, value) in pairs {
            if let Kind::Str(Some(key)) = &self.node(key).kind {
                // A later value for a key replaces the earlier one, as in Python.
                object.insert(key.clone(), self.to_json(value, budget)?);
            }
        }
        Ok(untagged(&object).is_none().then_some(object))
    }

    /// `{"$pickle": base64}` of the opcodes that push `item`.
    fn kept(&self, item: usize) -> Result<Value, Malformed> {
        let mut bytes = Vec::new();
        self.expand(item, &mut bytes, MAX_DEPTH + 1)?;
        Ok(tagged(RAW, STANDARD.encode(bytes)))
    }
}

/// The session a pickled Flask-Session value holds: its data, and its permanent flag when
/// the dict has `_permanent` (a bool; anything else there is kept as data).
///
/// # Errors
///
/// [`StoreError::Decode`] for bytes that are not one pickle of a dict with `str` keys, or
/// that the module documentation says are refused.
///
/// # Examples
///
/// ```
/// use satchel::flask::pickle;
/// use serde_json::json;
///
/// // What Flask-Session 0.6 stores for a permanent session {"k": "v"} (pickle.dumps).
/// let stored = b"\x80\x04\x95\x1b\0\0\0\0\0\0\0}\x94(\x8c\n_permanent\x94\x88\x8c\x01k\x94\x8c\x01v\x94u.";
/// let (data, permanent) = pickle::decode(stored)?;
/// assert_eq!(permanent, Some(true));
/// assert_eq!(data["k"], json!("v"));
///
/// // Written back without the memo opcodes, which Python does not need.
/// let written = pickle::encode(&data, permanent)?;
/// assert_eq!(written, b"\x80\x04\x95\x17\0\0\0\0\0\0\0}(\x8c\n_permanent\x88\x8c\x01k\x8c\x01vu.");
/// assert_eq!(pickle::decode(&written)?, (data, permanent));
/// # Ok::<_, satchel::StoreError>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<(Data, Option<bool>), StoreError> {
    read(bytes).map_err(StoreError::decode)
}

fn read(bytes: &[u8]) -> Result<(Data, Option<bool>), Malformed> {
    let mut reader = Reader::new(bytes, false);
    let root = reader.run()?;
    let limit = bytes
        .len()
        .saturating_mul(EXPANSION)
        .saturating_add(EXPANSION_ALLOWANCE);
    let mut sizes = vec![None; reader.nodes.len()];
    if reader.size(root, &mut sizes, MAX_DEPTH + 1)? > limit {
        return Err(Malformed::TooLarge { limit });
    }
    let Kind::Dict(pairs) = &reader.node(root).kind else {
        return Err(Malformed::NotADict);
    };
    let mut data = Data::new();
    for &(key, value) in pairs {
        let Kind::Str(Some(key)) = &reader.node(key).kind else {
            return Err(Malformed::NotADict);
        };
        data.insert(key.clone(), reader.to_json(value, MAX_DEPTH)?);
    }
    let permanent = data.get(PERMANENT).and_then(Value::as_bool);
    if permanent.is_some() {
        data.remove(PERMANENT);
    }
    Ok((data, permanent))
}

/// The pickled Flask-Session value of `data` (protocol 4, as the module documentation
/// says), with `_permanent` first when `permanent` is set, as Flask writes it.
///
/// # Errors
///
/// [`StoreError::Encode`] only for a string or bytes longer than a u64 counts, which no
/// memory holds.
pub fn encode(data: &Data, permanent: Option<bool>) -> Result<Vec<u8>, StoreError> {
    let flag = permanent.map(Value::Bool);
    let entries: Vec<(&str, &Value)> = flag
        .iter()
        .map(|flag| (PERMANENT, flag))
        .chain(
            data.iter()
                .filter(|(key, _)| !(key.as_str() == PERMANENT && permanent.is_some()))
                .map(|(key, value)| (key.as_str(), value)),
        )
        .collect();
    let mut body = vec![op::EMPTY_DICT];
    write_entries(&mut body, &entries)?;
    body.push(op::STOP);
    let mut out = Vec::with_capacity(body.len() + 11);
    out.extend_from_slice(&[op::PROTO, PROTOCOL]);
    if body.len() >= FRAME_MIN {
        let len = u64::try_from(body.len()).map_err(StoreError::encode)?;
        out.push(op::FRAME);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes a dict's items (the dict is on the stack) as Python's pickler batches them.
fn write_entries(out: &mut Vec<u8>, entries: &[(&str, &Value)]) -> Result<(), StoreError> {
    if let [(key, value)] = entries {
        write_str(out, key)?;
        write_value(out, value)?;
        out.push(op::SETITEM);
        return Ok(());
    }
    for batch in entries.chunks(BATCH) {
        out.push(op::MARK);
        for (key, value) in batch {
            write_str(out, key)?;
            write_value(out, value)?;
        }
        out.push(op::SETITEMS);
    }
    if !entries.is_empty() && entries.len().is_multiple_of(BATCH) {
        // Python's pickler goes round once more after a full batch.
        out.extend_from_slice(&[op::MARK, op::SETITEMS]);
    }
    Ok(())
}

/// Writes a list as Python's pickler does.
fn write_list(out: &mut Vec<u8>, items: &[Value]) -> Result<(), StoreError> {
    out.push(op::EMPTY_LIST);
    if let [item] = items {
        write_value(out, item)?;
        out.push(op::APPEND);
        return Ok(());
    }
    for batch in items.chunks(BATCH) {
        out.push(op::MARK);
        for item in batch {
            write_value(out, item)?;
        }
        out.push(op::APPENDS);
    }
    Ok(())
}

/// Writes a JSON value as Python pickles it (see the [module documentation](self)); a
/// kept value goes back as it was.
fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), StoreError> {
    match value {
        Value::Null => out.push(op::NONE),
        Value::Bool(flag) => out.push(if *flag { op::NEWTRUE } else { op::NEWFALSE }),
        Value::Number(number) => {
            let int = number
                .as_i64()
                .map(i128::from)
                .or_else(|| number.as_u64().map(i128::from));
            match (int, number.as_f64()) {
                (Some(int), _) => write_int(out, int)?,
                (None, Some(float)) => {
                    out.push(op::BINFLOAT);
                    out.extend_from_slice(&float.to_be_bytes());
                }
                (None, None) => {}
            }
        }
        Value::String(text) => write_str(out, text)?,
        Value::Array(items) => write_list(out, items)?,
        Value::Object(object) => match untagged(object) {
            Some(Tagged::Bytes(bytes)) => write_sized(
                out,
                &bytes,
                [op::SHORT_BINBYTES, op::BINBYTES, op::BINBYTES8],
            )?,
            Some(Tagged::Raw(bytes)) => out.extend_from_slice(&bytes),
            None => {
                out.push(op::EMPTY_DICT);
                let entries: Vec<(&str, &Value)> = object
                    .iter()
                    .map(|(key, value)| (key.as_str(), value))
                    .collect();
                write_entries(out, &entries)?;
            }
        },
    }
    Ok(())
}

/// Writes an int with the shortest opcode Python would use.
fn write_int(out: &mut Vec<u8>, int: i128) -> Result<(), StoreError> {
    if let Ok(int) = u8::try_from(int) {
        out.extend_from_slice(&[op::BININT1, int]);
    } else if let Ok(int) = u16::try_from(int) {
        out.push(op::BININT2);
        out.extend_from_slice(&int.to_le_bytes());
    } else if let Ok(int) = i32::try_from(int) {
        out.push(op::BININT);
        out.extend_from_slice(&int.to_le_bytes());
    } else {
        // Python's `encode_long`: the shortest little-endian two's complement.
        let mut bytes = int.to_le_bytes().to_vec();
        while ends_in_sign_extension(&bytes) {
            bytes.pop();
        }
        out.push(op::LONG1);
        out.push(u8::try_from(bytes.len()).map_err(StoreError::encode)?);
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

/// Whether the last byte of a little-endian two's complement only repeats the sign of the
/// byte before it.
fn ends_in_sign_extension(bytes: &[u8]) -> bool {
    match *bytes {
        [.., next, last] => {
            (last == 0x00 && next & 0x80 == 0) || (last == 0xff && next & 0x80 != 0)
        }
        _ => false,
    }
}

fn write_str(out: &mut Vec<u8>, text: &str) -> Result<(), StoreError> {
    write_sized(
        out,
        text.as_bytes(),
        [op::SHORT_BINUNICODE, op::BINUNICODE, op::BINUNICODE8],
    )
}

/// Writes `payload` after the first of `opcodes` (a length in 1, 4 or 8 bytes) that can
/// say its length.
fn write_sized(out: &mut Vec<u8>, payload: &[u8], opcodes: [u8; 3]) -> Result<(), StoreError> {
    let [short, long, huge] = opcodes;
    if let Ok(len) = u8::try_from(payload.len()) {
        out.extend_from_slice(&[short, len]);
    } else if let Ok(len) = u32::try_from(payload.len()) {
        out.push(long);
        out.extend_from_slice(&len.to_le_bytes());
    } else {
        let len = u64::try_from(payload.len()).map_err(StoreError::encode)?;
        out.push(huge);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(payload);
    Ok(())
}

/// An int as a JSON number, when an i64 or a u64 holds it.
fn json_int(int: i128) -> Option<Number> {
    i64::try_from(int)
        .map(Number::from)
        .or_else(|_| u64::try_from(int).map(Number::from))
        .ok()
}

/// The argument of INT or LONG as Python writes it (`-?[1-9][0-9]*` or `0`): `None` for
/// any other spelling, `Some(None)` for an int beyond an i128.
fn int_text(text: &[u8]) -> Option<Option<i128>> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        _ => (false, text),
    };
    let canonical = match digits {
        [b'0'] => !negative,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    let mut value = Some(0_i128);
    for &digit in digits {
        let digit = i128::from(digit.saturating_sub(b'0'));
        value = value
            .and_then(|value| value.checked_mul(10))
            .and_then(|value| {
                if negative {
                    value.checked_sub(digit)
                } else {
                    value.checked_add(digit)
                }
            });
    }
    Some(value)
}

/// A memo index of PUT or GET: decimal digits.
fn memo_index(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0_u64, |index, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        index
            .checked_mul(10)?
            .checked_add(u64::from(digit.saturating_sub(b'0')))
    })
}

/// The payload of LONG1 or LONG4, little-endian two's complement; `None` when it takes
/// more than an i128.
fn twos_complement(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.last().is_some_and(|&byte| byte & 0x80 != 0);
    let mut buffer = [if negative { 0xff } else { 0x00 }; 16];
    for (slot, &byte) in buffer.iter_mut().zip(bytes) {
        *slot = byte;
    }
    Some(i128::from_le_bytes(buffer))
}

/// The argument of FLOAT, as Python's unpickler reads it: refused when Python would
/// refuse it, as it does a finite spelling too large for a float (`1e999`).
fn float_text(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    let value: f64 = text.parse().ok()?;
    let spelled_infinite = text
        .trim_start_matches(['+', '-'])
        .get(..3)
        .is_some_and(|head| head.eq_ignore_ascii_case("inf"));
    (!value.is_infinite() || spelled_infinite).then_some(value)
}

/// The argument of UNICODE, Python's raw-unicode-escape: bytes as Latin-1, and `\uXXXX`
/// or `\UXXXXXXXX` after an odd number of backslashes as a code point. `None` when Python
/// refuses it, `Some(None)` when it holds a lone surrogate.
fn raw_unicode_escape(bytes: &[u8]) -> Option<Option<String>> {
    let mut text = String::with_capacity(bytes.len());
    let mut surrogate = false;
    let mut rest = bytes;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        let digits = match (byte, rest.first()) {
            (b'\\', Some(b'\\')) => {
                // A pair of backslashes escapes nothing.
                text.push_str("\\\\");
                rest = rest.get(1..).unwrap_or_default();
                continue;
            }
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => {
                text.push(char::from(byte));
                continue;
            }
        };
        let hex = rest.get(1..=digits)?;
        rest = rest.get(digits + 1..).unwrap_or_default();
        let code = hex.iter().try_fold(0_u32, |code, &digit| {
            code.checked_mul(16)?
                .checked_add(char::from(digit).to_digit(16)?)
        })?;
        match char::from_u32(code) {
            Some(character) => text.push(character),
            None if code <= 0x10_ffff => surrogate = true,
            None => return None,
        }
    }
    Some((!surrogate).then_some(text))
}

/// UTF-8 as Python's pickler writes a str (the `surrogatepass` error handler: lone
/// surrogates encoded as UTF-8 encodes other code points). `None` when Python refuses the
/// bytes, `Some(None)` when they hold a lone surrogate.
fn surrogate_pass(bytes: &[u8]) -> Option<Option<String>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(Some(text.to_owned()));
    }
    let mut rest = bytes;
    loop {
        let error = match std::str::from_utf8(rest) {
            Ok(_) => return Some(None),
            Err(error) => error,
        };
        match rest.get(error.valid_up_to()..)? {
            [0xed, 0xa0..=0xbf, 0x80..=0xbf, after @ ..] => rest = after,
            _ => return None,
        }
    }
}

/// What an object stands for, if it is of the shape of a `{"$bytes": …}` or
/// `{"$pickle": …}` (for the latter, when its bytes are the opcodes of exactly one value
/// that use no memo, FRAME or STOP, and end under protocol 3 or above).
fn untagged(object: &Map<String, Value>) -> Option<Tagged> {
    super::untagged(object, RAW, |bytes| Reader::new(bytes, true).run().is_ok())
}

/// Reads arbitrary bytes as a pickled Flask session (fuzzing): what reads writes back,
/// and reads again to the same session.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(bytes: &[u8]) {
    super::fuzz_round_trip(bytes, decode, encode);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    /// `{"_permanent": True, "k": "v"}` as Flask-Session 0.6 stores it (`pickle.dumps`,
    /// protocol 4), from `../shared/research/flask_session_formats.md` (§9).
    const PROTOCOL_4: &str =
        "8004951b000000000000007d94288c0a5f7065726d616e656e7494888c016b948c017694752e";
    /// The same session as Flask-Session 0.5 stores it in memcached (protocol 0), and as
    /// protocol 2 writes it (§9).
    const PROTOCOL_0: &[u8] = b"(dp0\nV_permanent\np1\nI01\nsVk\np2\nVv\np3\ns.";
    const PROTOCOL_2: &str = "80027d710028580a0000005f7065726d616e656e7471018858010000006b7102\
        5801000000767103752e";
    /// What Python 3.11 writes for that session without its memo:
    /// `p = pickle.Pickler(f, 4); p.fast = True; p.dump({"_permanent": True, "k": "v"})`.
    const WRITTEN: &str = "80049517000000000000007d288c0a5f7065726d616e656e74888c016b8c0176752e";

    /// A Flask Unchained session in Redis (Flask-Session 0.5.0, `dill.dumps`), from the
    /// research (§10): `{'_permanent': True, 'i': 42, 's': 'héllo', 'nested': {'a': [1,
    /// 2]}, 'b': b'\x00\xff', 'dt': datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    /// '_flashes': [('info', 'hi')]}`.
    const UNCHAINED: &str = "800495be000000000000007d94288c0a5f7065726d616e656e7494888c0169944b2a8c0173948c0668c3\
        a96c6c6f948c066e6573746564947d948c0161945d94284b014b0265738c016294430200ff948c026474\
        948c086461746574696d65948c086461746574696d65949394430a07e8010203040500000094680c8c08\
        74696d657a6f6e65949394680c8c0974696d6564656c74619493944b004b004b00879452948594529486\
        9452948c085f666c6173686573945d948c04696e666f948c02686994869461752e";
    /// What Python 3.11 writes for that session without its memo, its keys in Satchel's
    /// order: `p = pickle.Pickler(f, 4); p.fast = True; p.dump(d)`, `d` the session above
    /// with `_permanent` first and the other keys sorted.
    const UNCHAINED_WRITTEN: &str = "800495af000000000000007d288c0a5f7065726d616e656e74888c085f666c61736865735d8c04696e66\
        6f8c02686986618c0162430200ff8c0264748c086461746574696d658c086461746574696d6593430a07\
        e801020304050000008c086461746574696d658c0874696d657a6f6e65938c086461746574696d658c09\
        74696d6564656c7461934b004b004b008752855286528c01694b2a8c066e65737465647d8c01615d284b\
        014b0265738c01738c0668c3a96c6c6f752e";
    /// The opcodes that push the Unchained session's `datetime`, its memo GETs replaced by
    /// the strings they fetch.
    const UNCHAINED_DATETIME: &str = "8c086461746574696d658c086461746574696d6593430a07e801020304050000008c086461746574696d\
        658c0874696d657a6f6e65938c086461746574696d658c0974696d6564656c7461934b004b004b008752\
        85528652";

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    fn kept(bytes: &[u8]) -> Value {
        tagged(RAW, STANDARD.encode(bytes))
    }

    /// A protocol 4 pickle of `{"v": value}`, as Satchel writes it.
    fn stored(value: &[u8]) -> Vec<u8> {
        let body = [b"}\x8c\x01v".as_slice(), value, b"s.".as_slice()].concat();
        let len = u64::try_from(body.len()).unwrap().to_le_bytes();
        [b"\x80\x04\x95".as_slice(), len.as_slice(), body.as_slice()].concat()
    }

    /// The message of the refusal of `bytes`.
    fn refused(bytes: &[u8]) -> String {
        match decode(bytes) {
            Err(StoreError::Decode(error)) => error.to_string(),
            other => panic!("{bytes:02x?} read as {other:?}"),
        }
    }

    #[test]
    fn the_research_values_read_as_flask_wrote_them() {
        for stored in [hex(PROTOCOL_4), PROTOCOL_0.to_vec(), hex(PROTOCOL_2)] {
            let (data, permanent) = decode(&stored).unwrap();
            assert_eq!(permanent, Some(true), "{stored:02x?}");
            assert_eq!(data, Data::from([("k".to_owned(), json!("v"))]));
            assert_eq!(encode(&data, permanent).unwrap(), hex(WRITTEN));
        }
    }

    #[test]
    fn the_flask_unchained_example_reads_and_is_written_as_python_writes_it() {
        let (data, permanent) = decode(&hex(UNCHAINED)).unwrap();
        assert_eq!(permanent, Some(true));
        assert_eq!(data["i"], json!(42));
        assert_eq!(data["s"], json!("héllo"));
        assert_eq!(data["nested"], json!({"a": [1, 2]}));
        assert_eq!(data["b"], json!({"$bytes": "AP8="}));
        assert_eq!(data["dt"], kept(&hex(UNCHAINED_DATETIME)));
        // A flash is a tuple: kept, in a list Satchel reads.
        assert_eq!(
            data["_flashes"],
            json!([kept(&hex("8c04696e666f8c02686986"))])
        );
        assert_eq!(data.len(), 6);

        let written = encode(&data, permanent).unwrap();
        assert_eq!(written, hex(UNCHAINED_WRITTEN));
        assert_eq!(decode(&written).unwrap(), (data, permanent));
    }

    #[test]
    fn plain_values_are_written_as_python_writes_them() {
        // Python 3.11: `p = pickle.Pickler(f, 4); p.fast = True; p.dump(d)`, `d` these
        // values (`b` as bytes), `_permanent: False` first and the other keys sorted.
        let python = hex(
            "80049517020000000000007d288c0a5f7065726d616e656e74898c0162430500ff62696e8c036269678a\
            060000000000018c0165477e37e43c8800759c8c0166473ff80000000000008c01694b2a8c016c5d284b\
            018c0374776f4740080000000000004e885d658c046c6f6e67582c010000787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
            7878787878787878787878787878787878787878787878787878787878787878787878788c046d313238\
            4a80ffffff8c036d696e8a0800000000000000808c026d7a4780000000000000008c016e7d288c01615d\
            4b01618c01627d758c036e65674afbffffff8c056e656734308a060000000000ff8c01738c0668c3a96c\
            6c6f8c037536348a09ffffffffffffffff008c01784d2c018c01794a701101008c017a4affffffff752e",
        );
        let data = Data::from([
            ("b".to_owned(), json!({"$bytes": "AP9iaW4="})),
            ("big".to_owned(), json!(1_u64 << 40)),
            ("e".to_owned(), json!(1e300)),
            ("f".to_owned(), json!(1.5)),
            ("i".to_owned(), json!(42)),
            ("l".to_owned(), json!([1, "two", 3.0, null, true, []])),
            ("long".to_owned(), json!("x".repeat(300))),
            ("m128".to_owned(), json!(-128)),
            ("min".to_owned(), json!(i64::MIN)),
            ("mz".to_owned(), json!(-0.0)),
            ("n".to_owned(), json!({"a": [1], "b": {}})),
            ("neg".to_owned(), json!(-5)),
            ("neg40".to_owned(), json!(-(1_i64 << 40))),
            ("s".to_owned(), json!("héllo")),
            ("u64".to_owned(), json!(u64::MAX)),
            ("x".to_owned(), json!(300)),
            ("y".to_owned(), json!(70_000)),
            ("z".to_owned(), json!(-1)),
        ]);
        let written = encode(&data, Some(false)).unwrap();
        assert_eq!(written, python);
        assert_eq!(decode(&written).unwrap(), (data, Some(false)));
    }

    #[test]
    fn batches_are_those_of_python() {
        use sha2::Digest as _;

        // SHA-256 of what Python 3.11 writes (`p.fast = True`, protocol 4) for
        // {"_permanent": True, "d1000": {"k0000": 0, …, "k0999": 999},
        // "l1000": list(range(1000)), "l1001": list(range(1001)), "one": [7],
        // "solo": {"a": 1}}: 15319 bytes.
        let python = "94b5156730b371b6f9014a8bb68b76a4d82cc5f312d3e7dd2873559988be037d";
        let d1000: Map<String, Value> = (0..1000).map(|i| (format!("k{i:04}"), json!(i))).collect();
        let data = Data::from([
            ("d1000".to_owned(), Value::Object(d1000)),
            ("l1000".to_owned(), json!((0..1000).collect::<Vec<_>>())),
            ("l1001".to_owned(), json!((0..1001).collect::<Vec<_>>())),
            ("one".to_owned(), json!([7])),
            ("solo".to_owned(), json!({"a": 1})),
        ]);
        let written = encode(&data, Some(true)).unwrap();
        assert_eq!(written.len(), 15319);
        let digest: String = sha2::Sha256::digest(&written)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(digest, python);
        assert_eq!(decode(&written).unwrap(), (data, Some(true)));
    }

    #[test]
    fn what_json_cannot_hold_is_kept_as_it_was() {
        let odd = [
            "4b014b0286",                       // (1, 2)
            "29",                               // ()
            "8f284b0190",                       // {1}
            "284b0191",                         // frozenset({1})
            "8a09000000000000000040",           // 2**70
            "477ff8000000000000",               // NaN
            "46696e660a",                       // inf, as protocol 0 writes it
            "9602000000000000006162",           // bytearray(b"ab")
            "8c03eda080",                       // "\ud800", a lone surrogate
            "550161",                           // a Python 2 str
            "7d4b018c017873",                   // {1: "x"}
            "7d8c062462797465738c0441413d3d73", // {"$bytes": "AA=="}, a dict
            // OrderedDict(a=1, b=2): STACK_GLOBAL, REDUCE, then SETITEMS on the object.
            "8c0b636f6c6c656374696f6e738c0b4f72646572656444696374932952288c01614b018c01624b0275",
            UNCHAINED_DATETIME,
        ];
        for value in odd {
            let value = hex(value);
            let pickled = stored(&value);
            let (data, permanent) = decode(&pickled).unwrap();
            assert_eq!(data["v"], kept(&value), "{value:02x?}");
            assert_eq!(
                encode(&data, permanent).unwrap(),
                pickled,
                "written back as it was"
            );
        }

        // Inside a list, only the tuple is kept.
        let pickled = stored(&hex("5d4b014b028661"));
        let (data, _) = decode(&pickled).unwrap();
        assert_eq!(data["v"], json!([kept(&hex("4b014b0286"))]));
        assert_eq!(encode(&data, None).unwrap(), pickled);
    }

    #[test]
    fn kept_values_fetch_no_memo_and_keep_their_protocol() {
        // {"a": x, "b": x, "c": (x, x)} with x = [1, [2]], protocol 4: the tuple's memo
        // GETs are replaced by the list they fetch.
        let shared = hex(
            "80049524000000000000007d94288c0161945d94284b015d944b0261658c01629468028c01639468\
            0268028694752e",
        );
        let (data, _) = decode(&shared).unwrap();
        assert_eq!(data["a"], json!([1, [2]]));
        assert_eq!(data["b"], json!([1, [2]]));
        assert_eq!(
            data["c"],
            kept(&hex("5d284b015d4b0261655d284b015d4b02616586"))
        );

        // {"s": {1}}, protocol 2: the set's GLOBAL names `__builtin__`, which Python maps
        // onto `builtins` only below protocol 3.
        let set = hex(
            "80027d71005801000000737101635f5f6275696c74696e5f5f0a7365740a71025d71034b01618571\
            04527105732e",
        );
        let (data, _) = decode(&set).unwrap();
        let global = hex("8002635f5f6275696c74696e5f5f0a7365740a8004");
        assert_eq!(data["s"], kept(&[global, hex("5d4b01618552")].concat()));
        let again = encode(&data, None).unwrap();
        assert_eq!(decode(&again).unwrap(), (data, None));
    }

    #[test]
    fn recursive_and_oversized_values_are_refused() {
        // l = []; l.append(l); pickle.dumps({"l": l}, 4), then protocol 0.
        let message = refused(&hex("8004950d000000000000007d948c016c945d94680261732e"));
        assert!(message.contains("APPEND"), "{message}");
        refused(b"(dp0\nVl\np1\n(lp2\ng2\nas.");

        // Lists that each hold the one before twice, fetched from the memo: forty of them
        // expand to 2**40 lists, four to sixteen.
        let laughs = |count: u8| {
            let mut bytes = b"\x80\x04}\x8c\x01a]\x94K\x01a0".to_vec();
            for index in 0..count {
                bytes.extend_from_slice(&[b']', b'(', b'h', index, b'h', index, b'e', 0x94, b'0']);
            }
            bytes.extend_from_slice(&[b'h', count, b's', b'.']);
            bytes
        };
        let message = refused(&laughs(40));
        assert!(message.contains("more than"), "{message}");
        let (data, _) = decode(&laughs(4)).unwrap();
        assert_eq!(data["a"][1][0][1][0], json!([1]));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut bytes = b"\x80\x04}\x8c\x01a".to_vec();
            bytes.extend(std::iter::repeat_n(b']', depth));
            bytes.extend(std::iter::repeat_n(b'a', depth - 1));
            bytes.extend_from_slice(b"s.");
            bytes
        };
        let (data, _) = decode(&nested(MAX_DEPTH)).unwrap();
        assert!(data["a"].is_array());
        let message = refused(&nested(MAX_DEPTH + 1));
        assert!(message.contains("deeper"), "{message}");
        refused(&nested(100_000));
    }

    #[test]
    fn malformed_values_are_refused() {
        let whole = hex(PROTOCOL_4);
        for end in 0..whole.len() {
            refused(&whole[..end]);
        }
        let after_stop = [whole.as_slice(), b"\0".as_slice()].concat();
        let bad: [&[u8]; 20] = [
            &after_stop,                                    // bytes after STOP
            b"\x80\x04}\x8c\x01aNs",                        // no STOP
            b"\x80\x06}.",                                  // protocol 6
            b"\x80\x04].",                                  // not a dict
            b"\x80\x04}K\x01Ns.",                           // an int key
            b"\x80\x04}\xff.",                              // no opcode
            b"\x80\x04}h\x05.",                             // a memo entry never stored
            b"\x80\x04}(\x8c\x01au.",                       // SETITEMS of one item
            b"\x80\x04}]Ns.",                               // a list as a key
            b"\x80\x04Ne.",                                 // APPENDS without MARK
            b"\x80\x04}\x8c\x01aK\x01as.",                  // APPEND to a str
            b"\x80\x04}\x8c\x01aI0x10\ns.",                 // an INT Python reads as 16
            b"\x80\x04}\x8c\x01aI010\ns.",                  // an INT Python reads as 8
            b"\x80\x04}\x8c\x01aF1e999\ns.",                // a FLOAT Python refuses
            b"\x80\x04}\x8c\x01aX\x01\0\0\0\xffs.",         // a str that is not UTF-8
            b"\x80\x04}\x8c\x01aV\\u00\ns.",                // a cut escape
            b"\x80\x04}\x8c\x01a\x95\xff\0\0\0\0\0\0\0Ns.", // a frame cut short
            b"\x80\x04}\x8c\x01aS'a\ns.",                   // an unquoted STRING
            b"\x80\x04}\x8c\x01aK\x01\x93s.",               // STACK_GLOBAL of a str and an int
            b"\x80\x04}\x8c\x01a)Nbs.",                     // BUILD on a tuple
        ];
        for bytes in bad {
            refused(bytes);
        }
    }

    #[test]
    fn protocol_0_strings_and_ints_read_as_python_reads_them() {
        let (data, _) = decode(
            b"(dp0\nVs\np1\nVh\xe9\\u005c\\\\u0041\\U0001f600\np2\nsVn\nI-42\nsVl\n\
              L18446744073709551615L\nsVf\nF-1.5\nsVt\nI00\ns.",
        )
        .unwrap();
        // What Python reads: `\u005c` is a backslash, a pair of backslashes escapes nothing.
        assert_eq!(data["s"], json!("hé\\\\\\u0041😀"));
        assert_eq!(data["n"], json!(-42));
        assert_eq!(data["l"], json!(u64::MAX));
        assert_eq!(data["f"], json!(-1.5));
        assert_eq!(data["t"], json!(false));
    }

    #[test]
    fn tagged_objects_of_another_shape_stay_dicts() {
        let data = Data::from([
            ("two".to_owned(), json!({"$bytes": "AA==", "x": 1})),
            ("bad".to_owned(), json!({"$bytes": "not base64!"})),
            ("num".to_owned(), json!({"$bytes": 5})),
            // Opcodes that use the memo, leave two values or stop are no kept value.
            (
                "memo".to_owned(),
                json!({"$pickle": STANDARD.encode(b"N\x94")}),
            ),
            (
                "two_values".to_owned(),
                json!({"$pickle": STANDARD.encode(b"NN")}),
            ),
            (
                "stop".to_owned(),
                json!({"$pickle": STANDARD.encode(b"N.")}),
            ),
        ]);
        let written = encode(&data, None).unwrap();
        assert_eq!(decode(&written).unwrap(), (data, None));
    }
}
