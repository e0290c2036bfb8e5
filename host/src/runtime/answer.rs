//! Bounds on what a connector hands back, checked in the guest's memory before the host copies
//! anything. Every export's result is lifted as [`Checked<T>`]: wasmtime calls its lift right
//! after the guest returns (before post-return frees anything), and it first walks the answer where
//! it lies in linear memory, guided by the component's own type information, counting the items of
//! every list (`host.max-items-per-answer`), the bytes of every string (`host.max-string-bytes`)
//! and the bytes the host would hold for the whole answer (`host.max-answer-bytes`); only an answer
//! within all three is lifted into the generated bindings' types. A refused answer is an
//! [`Oversized`] error and nothing of it was allocated. The limits come from the call's instance
//! options through [`with_limits`] (a lift has no access to the store's data). Arguments a guest
//! hands to an import are bounded by wasmtime's own hostcall fuel, set per call to
//! `host.max-answer-bytes` (see `Connector::call`).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, ComponentTypes, InstanceType, InterfaceType, LiftContext,
};
use wasmtime::component::{ComponentType, Lift};

use crate::capabilities::options::InstanceOptions;

/// How much more the host holds for one list element than the element takes in guest memory, at
/// most: a string or list is 8 bytes in a 32-bit guest and 24 (`String`, `Vec`) on the host, and
/// every other canonical-ABI type grows less. A list is charged this times its guest size, so the
/// answer cap holds for what the host allocates (checked for the contract's types in the tests).
pub const HOST_EXPANSION: u64 = 3;

/// The caps one answer is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    pub max_items: u64,
    pub max_string_bytes: u64,
    pub max_answer_bytes: u64,
}

impl AnswerLimits {
    pub fn of(options: &InstanceOptions) -> AnswerLimits {
        AnswerLimits {
            max_items: u64::from(options.max_items_per_answer),
            max_string_bytes: options.max_string_bytes,
            max_answer_bytes: options.max_answer_bytes,
        }
    }
}

/// Which cap an answer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerCap {
    Items,
    StringBytes,
    AnswerBytes,
}

impl AnswerCap {
    /// The instance option that sets this cap.
    pub fn option(self) -> &'static str {
        match self {
            AnswerCap::Items => "host.max-items-per-answer",
            AnswerCap::StringBytes => "host.max-string-bytes",
            AnswerCap::AnswerBytes => "host.max-answer-bytes",
        }
    }
}

/// What a connector handed back that broke a cap; refused before the host copied it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Oversized {
    pub cap: AnswerCap,
    /// Where in the answer (`records[3].remote-id`), or which import's arguments.
    pub at: String,
    /// Items or bytes found (for the answer cap: the running total when it was crossed), when known.
    pub found: Option<u64>,
    pub limit: u64,
}

impl fmt::Display for Oversized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.at.is_empty() {
            "the answer"
        } else {
            &self.at
        };
        match (self.cap, self.found) {
            (AnswerCap::Items, Some(n)) => write!(f, "a list of {n} items at {at}")?,
            (AnswerCap::StringBytes, Some(n)) => write!(f, "a string of {n} bytes at {at}")?,
            (_, Some(n)) => write!(f, "at least {n} bytes in all (crossed at {at})")?,
            (_, None) => write!(f, "more than {} bytes in {at}", self.limit)?,
        }
        write!(
            f,
            ", over the cap of {} ({}); refused before the host copied it (raise {} if that is legitimate)",
            self.limit,
            self.cap.option(),
            self.cap.option()
        )
    }
}

thread_local! {
    static LIMITS: Cell<Option<AnswerLimits>> = const { Cell::new(None) };
}

/// The limits in force on this thread: the current call's, or the defaults.
fn current_limits() -> AnswerLimits {
    LIMITS
        .with(Cell::get)
        .unwrap_or_else(|| AnswerLimits::of(&InstanceOptions::default()))
}

/// Runs `future` with `limits` in force for every lift it does. Wasmtime runs the guest and lifts
/// its result on a fiber resumed inside this future's `poll`, on the polling thread, so the limits
/// are set for exactly the duration of each poll.
pub fn with_limits<F: Future + Unpin>(limits: AnswerLimits, future: F) -> WithLimits<F> {
    WithLimits { limits, future }
}

pub struct WithLimits<F> {
    limits: AnswerLimits,
    future: F,
}

impl<F: Future + Unpin> Future for WithLimits<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(Option<AnswerLimits>);
        impl Drop for Restore {
            fn drop(&mut self) {
                LIMITS.with(|l| l.set(self.0));
            }
        }
        let this = self.get_mut();
        let _restore = Restore(LIMITS.with(|l| l.replace(Some(this.limits))));
        Pin::new(&mut this.future).poll(cx)
    }
}

/// An export's result, lifted only once it is within the call's [`AnswerLimits`].
pub struct Checked<T>(pub T);

// SAFETY: every associated item is `T`'s, so the layout and type checks are exactly `T`'s.
unsafe impl<T: ComponentType> ComponentType for Checked<T> {
    type Lower = T::Lower;
    const ABI: CanonicalAbiInfo = T::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)
    }
}

// SAFETY: lifting is `T`'s own, after a read-only walk of the same bytes.
unsafe impl<T: Lift> Lift for Checked<T> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        // A result is passed flat only when it fits one core value (MAX_FLAT_RESULTS), and a
        // string or list takes two: a flat result holds nothing that could be oversized.
        Ok(Checked(T::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let mut walk = Walk {
            types: cx.types,
            memory: cx.memory(),
            encoding: cx.options().string_encoding,
            limits: current_limits(),
            total: 0,
            path: Vec::new(),
        };
        walk.value(&ty, bytes)?;
        Ok(Checked(T::linear_lift_from_memory(cx, ty, bytes)?))
    }
}

/// One step of the path to a value, for the refusal's message.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// A read-only walk of one value in guest memory, charging it against the limits.
struct Walk<'a> {
    types: &'a ComponentTypes,
    memory: &'a [u8],
    encoding: StringEncoding,
    limits: AnswerLimits,
    total: u64,
    path: Vec<Step<'a>>,
}

fn malformed(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the connector's answer is malformed: {what}"))
}

fn read_u32(bytes: &[u8], at: usize) -> wasmtime::Result<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed("a value is cut short"))
}

fn read_discriminant(bytes: &[u8], size: usize) -> wasmtime::Result<usize> {
    let b = bytes
        .get(..size)
        .ok_or_else(|| malformed("a variant is cut short"))?;
    Ok(match size {
        1 => usize::from(b[0]),
        2 => usize::from(u16::from_le_bytes([b[0], b[1]])),
        _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
    })
}

impl<'a> Walk<'a> {
    fn path(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Field(name) if out.is_empty() => out.push_str(name),
                Step::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn refuse(&self, cap: AnswerCap, found: u64, limit: u64) -> wasmtime::Error {
        wasmtime::Error::new(Oversized {
            cap,
            at: self.path(),
            found: Some(found),
            limit,
        })
    }

    fn charge(&mut self, bytes: u64) -> wasmtime::Result<()> {
        self.total = self.total.saturating_add(bytes);
        if self.total > self.limits.max_answer_bytes {
            return Err(self.refuse(
                AnswerCap::AnswerBytes,
                self.total,
                self.limits.max_answer_bytes,
            ));
        }
        Ok(())
    }

    /// Walks the value of type `ty` held in `bytes` (its canonical-ABI representation).
    fn value(&mut self, ty: &InterfaceType, bytes: &[u8]) -> wasmtime::Result<()> {
        let types = self.types;
        match ty {
            InterfaceType::String => self.string(bytes),
            InterfaceType::List(index) => self.list(&types[*index].element, bytes),
            InterfaceType::Record(index) => {
                let mut offset = 0usize;
                for field in types[*index].fields.iter() {
                    let abi = types.canonical_abi(&field.ty);
                    let at = abi.next_field32_size(&mut offset);
                    self.path.push(Step::Field(&field.name));
                    self.value(&field.ty, &bytes[at..at + abi.size32 as usize])?;
                    self.path.pop();
                }
                Ok(())
            }
            InterfaceType::Tuple(index) => {
                let mut offset = 0usize;
                for (i, ty) in types[*index].types.iter().enumerate() {
                    let abi = types.canonical_abi(ty);
                    let at = abi.next_field32_size(&mut offset);
                    self.path.push(Step::Index(i));
                    self.value(ty, &bytes[at..at + abi.size32 as usize])?;
                    self.path.pop();
                }
                Ok(())
            }
            InterfaceType::Variant(index) => {
                let variant = &types[*index];
                let case = read_discriminant(bytes, usize::from(variant.info.size))?;
                let (name, payload) = variant
                    .cases
                    .get_index(case)
                    .ok_or_else(|| malformed("a variant's case is out of range"))?;
                match payload {
                    Some(ty) => self.payload(
                        Some(name),
                        ty,
                        bytes,
                        variant.info.payload_offset32 as usize,
                    ),
                    None => Ok(()),
                }
            }
            InterfaceType::Option(index) => {
                let option = &types[*index];
                match read_discriminant(bytes, usize::from(option.info.size))? {
                    0 => Ok(()),
                    1 => self.payload(
                        None,
                        &option.ty,
                        bytes,
                        option.info.payload_offset32 as usize,
                    ),
                    _ => Err(malformed("an option's case is out of range")),
                }
            }
            InterfaceType::Result(index) => {
                let result = &types[*index];
                let (name, payload) = match read_discriminant(bytes, usize::from(result.info.size))?
                {
                    0 => (None, result.ok.as_ref()),
                    1 => (Some("error"), result.err.as_ref()),
                    _ => return Err(malformed("a result's case is out of range")),
                };
                match payload {
                    Some(ty) => {
                        self.payload(name, ty, bytes, result.info.payload_offset32 as usize)
                    }
                    None => Ok(()),
                }
            }
            InterfaceType::Bool
            | InterfaceType::S8
            | InterfaceType::U8
            | InterfaceType::S16
            | InterfaceType::U16
            | InterfaceType::S32
            | InterfaceType::U32
            | InterfaceType::S64
            | InterfaceType::U64
            | InterfaceType::Float32
            | InterfaceType::Float64
            | InterfaceType::Char
            | InterfaceType::Enum(_)
            | InterfaceType::Flags(_) => Ok(()),
            // The contract has no maps, resources, streams, futures or fixed-length lists.
            other => Err(wasmtime::Error::msg(format!(
                "the host does not lift {other:?} from a connector"
            ))),
        }
    }

    fn payload(
        &mut self,
        name: Option<&'a str>,
        ty: &InterfaceType,
        bytes: &[u8],
        offset: usize,
    ) -> wasmtime::Result<()> {
        let abi = self.types.canonical_abi(ty);
        let payload = bytes
            .get(offset..offset + abi.size32 as usize)
            .ok_or_else(|| malformed("a payload is cut short"))?;
        if let Some(name) = name {
            self.path.push(Step::Field(name));
        }
        self.value(ty, payload)?;
        if name.is_some() {
            self.path.pop();
        }
        Ok(())
    }

    fn string(&mut self, bytes: &[u8]) -> wasmtime::Result<()> {
        let ptr = read_u32(bytes, 0)? as usize;
        let len = read_u32(bytes, 4)? as u64;
        // (bytes in guest memory, most bytes the host may hold for it in UTF-8)
        let (guest, host) = match self.encoding {
            StringEncoding::Utf8 => (len, len),
            StringEncoding::Utf16 => (len * 2, len * 3),
            StringEncoding::CompactUtf16 => {
                const UTF16_TAG: u64 = 1 << 31;
                if len & UTF16_TAG == 0 {
                    (len, len * 2)
                } else {
                    let units = len ^ UTF16_TAG;
                    (units * 2, units * 3)
                }
            }
        };
        if host > self.limits.max_string_bytes {
            return Err(self.refuse(AnswerCap::StringBytes, host, self.limits.max_string_bytes));
        }
        if (ptr as u64).saturating_add(guest) > self.memory.len() as u64 {
            return Err(malformed("a string lies outside the guest's memory"));
        }
        self.charge(host)
    }

    fn list(&mut self, element: &InterfaceType, bytes: &[u8]) -> wasmtime::Result<()> {
        let ptr = read_u32(bytes, 0)? as usize;
        let len = read_u32(bytes, 4)? as usize;
        if len as u64 > self.limits.max_items {
            return Err(self.refuse(AnswerCap::Items, len as u64, self.limits.max_items));
        }
        let types = self.types;
        let abi = types.canonical_abi(element);
        let size = abi.size32 as usize;
        self.charge((len as u64) * (size as u64) * HOST_EXPANSION)?;
        let span = self
            .memory
            .get(ptr..)
            .and_then(|rest| rest.get(..len * size))
            .ok_or_else(|| malformed("a list lies outside the guest's memory"))?;
        if !self.holds_indirect(element) {
            return Ok(());
        }
        for i in 0..len {
            self.path.push(Step::Index(i));
            self.value(element, &span[i * size..(i + 1) * size])?;
            self.path.pop();
        }
        Ok(())
    }

    /// Whether a value of `ty` can point elsewhere in memory (holds a string or a list).
    fn holds_indirect(&self, ty: &InterfaceType) -> bool {
        let types = self.types;
        match ty {
            InterfaceType::String | InterfaceType::List(_) => true,
            InterfaceType::Record(i) => types[*i].fields.iter().any(|f| self.holds_indirect(&f.ty)),
            InterfaceType::Tuple(i) => types[*i].types.iter().any(|t| self.holds_indirect(t)),
            InterfaceType::Variant(i) => types[*i]
                .cases
                .values()
                .any(|c| c.as_ref().is_some_and(|t| self.holds_indirect(t))),
            InterfaceType::Option(i) => self.holds_indirect(&types[*i].ty),
            InterfaceType::Result(i) => [types[*i].ok.as_ref(), types[*i].err.as_ref()]
                .into_iter()
                .flatten()
                .any(|t| self.holds_indirect(t)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::bindings::connector::{
        Choice, HeaderTemplate, Lookup, Pushed, ServerVariable, SyncOption,
    };
    use crate::contract::bindings::types::{
        ConnectorError, CustomField, FieldError, Line, PulledRecord, RemoteReference,
    };
    use crate::contract::bindings::v1_0::exports::bss::integration::connector as v1_0;

    fn within_expansion<T: ComponentType>() -> bool {
        std::mem::size_of::<T>() as u64 <= HOST_EXPANSION * T::SIZE32 as u64
    }

    /// A list is charged `HOST_EXPANSION` times its guest size; wasmtime allocates the host size.
    /// So the charge covers the allocation for every element type an answer can hold.
    #[test]
    fn every_list_element_of_the_contract_fits_the_host_expansion() {
        assert!(within_expansion::<String>());
        assert!(within_expansion::<Choice>());
        assert!(within_expansion::<Pushed>());
        assert!(within_expansion::<Result<Pushed, ConnectorError>>());
        assert!(within_expansion::<PulledRecord>());
        assert!(within_expansion::<RemoteReference>());
        assert!(within_expansion::<CustomField>());
        assert!(within_expansion::<Line>());
        assert!(within_expansion::<FieldError>());
        assert!(within_expansion::<ServerVariable>());
        assert!(within_expansion::<SyncOption>());
        assert!(within_expansion::<Lookup>());
        assert!(within_expansion::<HeaderTemplate>());
        assert!(within_expansion::<v1_0::Choice>());
        assert!(within_expansion::<Result<v1_0::Pushed, ConnectorError>>());
        assert!(within_expansion::<v1_0::ServerVariable>());
        assert!(within_expansion::<v1_0::Lookup>());
        assert!(within_expansion::<v1_0::HeaderTemplate>());
        assert!(within_expansion::<v1_0::SyncOption>());
    }

    #[test]
    fn a_refusal_names_where_what_and_the_option() {
        let refused = Oversized {
            cap: AnswerCap::StringBytes,
            at: "records[3].remote-id".into(),
            found: Some(20 << 20),
            limit: 64 << 10,
        };
        assert_eq!(
            refused.to_string(),
            "a string of 20971520 bytes at records[3].remote-id, over the cap of 65536 \
             (host.max-string-bytes); refused before the host copied it (raise \
             host.max-string-bytes if that is legitimate)"
        );
    }
}
