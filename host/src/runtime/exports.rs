//! Calling a connector's exports, for each contract minor the host serves, with results in the
//! newest contract's types.
//!
//! The generated bindings type-check every export of a fresh instance before handing it out, which
//! was 14% of a call's cost (profiled: `GuestIndices::load`). The signatures of a component's
//! exports are fixed when it is compiled and linked (the contract has no resource types), so
//! [`Exports::new`] checks them once against the linked component, the way the generated bindings'
//! own `new` does, and no `Exports` exists for a component that fails; a call then looks up only
//! the function it runs. Every result is lifted through [`Checked`], so an answer over the call's
//! caps is refused in guest memory before the host copies it.

use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, TypedFunc};

use super::answer::Checked;
use crate::capabilities::CallState;
use crate::contract::Contract;
use crate::contract::bindings::connector::{
    Choice, ConnectorManifest, PullPage, PushItem, PushOptions, Pushed, Removal, Subscription,
};
use crate::contract::bindings::types::{ConnectorError, Entity, PulledRecord, Record};
use crate::contract::bindings::v1_0::exports::bss::integration::connector as v1_0;
use crate::contract::bindings::v1_1::exports::bss::integration::connector as v1_1;
use crate::contract::bindings::v1_3;

/// The export indices of one contract minor, with one typed accessor per function.
macro_rules! minor_exports {
    ($name:ident { $($func:ident = $export:literal : ($($param:ty),*) -> $result:ty;)* }) => {
        pub(crate) struct $name {
            $($func: ComponentExportIndex,)*
        }

        impl $name {
            /// Finds every export and checks its signature against this minor's.
            fn new(pre: &InstancePre<CallState>, interface: &str) -> Result<Self, String> {
                let component = pre.component();
                let instance_type = pre.instance_type();
                let connector = component
                    .get_export_index(None, interface)
                    .ok_or_else(|| format!("it does not export {interface}"))?;
                Ok($name {
                    $($func: {
                        let (item, index) = component
                            .get_export(Some(&connector), $export)
                            .ok_or_else(|| format!("{interface} lacks `{}`", $export))?;
                        let ComponentItem::ComponentFunc(func) = item else {
                            return Err(format!("{interface}'s `{}` is not a function", $export));
                        };
                        func.typecheck::<($($param,)*), (Checked<$result>,)>(&instance_type)
                            .map_err(|e| format!(
                                "{interface}'s `{}` does not have the contract's type: {e:#}",
                                $export
                            ))?;
                        index
                    },)*
                })
            }

            $(fn $func(
                &self,
                instance: &Instance,
                store: &mut Store<CallState>,
            ) -> TypedFunc<($($param,)*), (Checked<$result>,)> {
                let func = instance
                    .get_func(&mut *store, &self.$func)
                    .expect("the export was found when the component was loaded");
                // SAFETY: `new` checked this signature against the linked component (`self`
                // exists only if it passed), and every instance of it has the same export types.
                unsafe { TypedFunc::new_unchecked(func) }
            })*
        }
    };
}

type PushResults<P> = Result<Vec<Result<P, ConnectorError>>, ConnectorError>;

// 1.3's functions are 1.4's, but for the manifest (see `contract::bindings::v1_3`): one set of
// accessors serves both, with the manifest read through the minor's own type.
minor_exports!(ExportsV1_3 {
    activate = "activate": () -> Result<String, ConnectorError>;
    lookup_choices = "lookup-choices": (String) -> Result<Vec<Choice>, ConnectorError>;
    push = "push": (Entity, Vec<PushItem>, PushOptions) -> PushResults<Pushed>;
    pull = "pull": (Entity, Option<String>, Option<String>) -> Result<PullPage, ConnectorError>;
    fetch = "fetch": (Entity, String) -> Result<Option<PulledRecord>, ConnectorError>;
    subscribe = "subscribe": (String, Vec<Entity>) -> Result<Vec<Subscription>, ConnectorError>;
    remove = "remove": (Entity, Vec<String>, PushOptions) -> PushResults<Removal>;
});

minor_exports!(ManifestV1_4 {
    manifest = "manifest": () -> ConnectorManifest;
});

minor_exports!(ManifestV1_3 {
    manifest = "manifest": () -> v1_3::ConnectorManifest;
});

/// The manifest export of a 1.3 or a 1.4 connector.
pub(crate) enum ManifestSince1_3 {
    V1_3(ManifestV1_3),
    V1_4(ManifestV1_4),
}

// 1.2's types are 1.3's (see `contract::bindings::v1_2`): only the functions differ.
minor_exports!(ExportsV1_2 {
    manifest = "manifest": () -> v1_3::ConnectorManifest;
    activate = "activate": () -> Result<String, ConnectorError>;
    lookup_choices = "lookup-choices": (String) -> Result<Vec<Choice>, ConnectorError>;
    push = "push": (Entity, Vec<PushItem>, PushOptions) -> PushResults<Pushed>;
    pull = "pull": (Entity, Option<String>, Option<String>) -> Result<PullPage, ConnectorError>;
});

minor_exports!(ExportsV1_1 {
    manifest = "manifest": () -> v1_1::ConnectorManifest;
    activate = "activate": () -> Result<String, ConnectorError>;
    lookup_choices = "lookup-choices": (String) -> Result<Vec<v1_1::Choice>, ConnectorError>;
    push = "push": (Entity, Vec<Record>, v1_1::PushOptions) -> PushResults<v1_1::Pushed>;
    pull = "pull": (Entity, Option<String>, Option<String>) -> Result<v1_1::PullPage, ConnectorError>;
});

minor_exports!(ExportsV1_0 {
    manifest = "manifest": () -> v1_0::ConnectorManifest;
    activate = "activate": () -> Result<String, ConnectorError>;
    lookup_choices = "lookup-choices": (String) -> Result<Vec<v1_0::Choice>, ConnectorError>;
    push = "push": (Entity, Vec<Record>, v1_0::PushOptions) -> PushResults<v1_0::Pushed>;
    pull = "pull": (Entity, Option<String>, Option<String>) -> Result<v1_0::PullPage, ConnectorError>;
});

/// A component's exports, through the minor it was built against (1.3 and 1.4 differ only by
/// their manifest).
pub(crate) enum Exports {
    V1_0(ExportsV1_0),
    V1_1(ExportsV1_1),
    V1_2(ExportsV1_2),
    V1_3(ExportsV1_3, ManifestSince1_3),
}

/// The bare records of push items, for a minor before 1.2 (which knows no last push).
fn bare(items: Vec<PushItem>) -> Vec<Record> {
    items.into_iter().map(|item| item.record).collect()
}

impl Exports {
    /// Finds the connector's exports and checks their types against `contract`'s.
    pub fn new(pre: &InstancePre<CallState>, contract: Contract) -> Result<Exports, String> {
        let interface = format!("bss:integration/connector@{}", contract.version());
        Ok(match contract {
            Contract::V1_0 => Exports::V1_0(ExportsV1_0::new(pre, &interface)?),
            Contract::V1_1 => Exports::V1_1(ExportsV1_1::new(pre, &interface)?),
            Contract::V1_2 => Exports::V1_2(ExportsV1_2::new(pre, &interface)?),
            Contract::V1_3 => Exports::V1_3(
                ExportsV1_3::new(pre, &interface)?,
                ManifestSince1_3::V1_3(ManifestV1_3::new(pre, &interface)?),
            ),
            Contract::V1_4 => Exports::V1_3(
                ExportsV1_3::new(pre, &interface)?,
                ManifestSince1_3::V1_4(ManifestV1_4::new(pre, &interface)?),
            ),
        })
    }

    pub async fn manifest(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<ConnectorManifest> {
        Ok(match self {
            Exports::V1_3(_, ManifestSince1_3::V1_4(e)) => {
                e.manifest(instance, store).call_async(store, ()).await?.0.0
            }
            Exports::V1_3(_, ManifestSince1_3::V1_3(e)) => e
                .manifest(instance, store)
                .call_async(store, ())
                .await?
                .0
                .0
                .try_into()
                .map_err(wasmtime::Error::msg)?,
            Exports::V1_2(e) => e
                .manifest(instance, store)
                .call_async(store, ())
                .await?
                .0
                .0
                .try_into()
                .map_err(wasmtime::Error::msg)?,
            Exports::V1_1(e) => e
                .manifest(instance, store)
                .call_async(store, ())
                .await?
                .0
                .0
                .try_into()
                .map_err(wasmtime::Error::msg)?,
            Exports::V1_0(e) => e
                .manifest(instance, store)
                .call_async(store, ())
                .await?
                .0
                .0
                .into(),
        })
    }

    pub async fn activate(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<Result<String, ConnectorError>> {
        Ok(match self {
            Exports::V1_3(e, _) => e.activate(instance, store).call_async(store, ()).await?.0.0,
            Exports::V1_2(e) => e.activate(instance, store).call_async(store, ()).await?.0.0,
            Exports::V1_1(e) => e.activate(instance, store).call_async(store, ()).await?.0.0,
            Exports::V1_0(e) => e.activate(instance, store).call_async(store, ()).await?.0.0,
        })
    }

    pub async fn lookup_choices(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<Choice>, ConnectorError>> {
        Ok(match self {
            Exports::V1_3(e, _) => {
                e.lookup_choices(instance, store)
                    .call_async(store, (key,))
                    .await?
                    .0
                    .0
            }
            Exports::V1_2(e) => {
                e.lookup_choices(instance, store)
                    .call_async(store, (key,))
                    .await?
                    .0
                    .0
            }
            Exports::V1_1(e) => e
                .lookup_choices(instance, store)
                .call_async(store, (key,))
                .await?
                .0
                .0
                .map(|choices| choices.into_iter().map(Into::into).collect()),
            Exports::V1_0(e) => e
                .lookup_choices(instance, store)
                .call_async(store, (key,))
                .await?
                .0
                .0
                .map(|choices| choices.into_iter().map(Into::into).collect()),
        })
    }

    pub async fn push(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        entity: Entity,
        records: Vec<PushItem>,
        options: PushOptions,
    ) -> wasmtime::Result<PushResults<Pushed>> {
        Ok(match self {
            Exports::V1_3(e, _) => {
                e.push(instance, store)
                    .call_async(store, (entity, records, options))
                    .await?
                    .0
                    .0
            }
            Exports::V1_2(e) => {
                e.push(instance, store)
                    .call_async(store, (entity, records, options))
                    .await?
                    .0
                    .0
            }
            Exports::V1_1(e) => e
                .push(instance, store)
                .call_async(store, (entity, bare(records), options.into()))
                .await?
                .0
                .0
                .map(|results| results.into_iter().map(|one| one.map(Into::into)).collect()),
            Exports::V1_0(e) => e
                .push(instance, store)
                .call_async(store, (entity, bare(records), options.into()))
                .await?
                .0
                .0
                .map(|results| results.into_iter().map(|one| one.map(Into::into)).collect()),
        })
    }

    pub async fn pull(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        entity: Entity,
        since: Option<String>,
        page_token: Option<String>,
    ) -> wasmtime::Result<Result<PullPage, ConnectorError>> {
        Ok(match self {
            Exports::V1_3(e, _) => {
                e.pull(instance, store)
                    .call_async(store, (entity, since, page_token))
                    .await?
                    .0
                    .0
            }
            Exports::V1_2(e) => {
                e.pull(instance, store)
                    .call_async(store, (entity, since, page_token))
                    .await?
                    .0
                    .0
            }
            Exports::V1_1(e) => e
                .pull(instance, store)
                .call_async(store, (entity, since, page_token))
                .await?
                .0
                .0
                .map(Into::into),
            Exports::V1_0(e) => e
                .pull(instance, store)
                .call_async(store, (entity, since, page_token))
                .await?
                .0
                .0
                .map(Into::into),
        })
    }

    /// The accessors of the exports since 1.3, or an `unsupported` answer naming the minor that
    /// lacks them.
    fn since_1_3(&self, export: &str) -> Result<&ExportsV1_3, ConnectorError> {
        match self {
            Exports::V1_3(e, _) => Ok(e),
            Exports::V1_0(_) | Exports::V1_1(_) | Exports::V1_2(_) => {
                Err(ConnectorError::Unsupported(format!(
                    "`{export}` is in bss:integration 1.3; this connector is built against an \
                     older minor: rebuild it against 1.3 to use it"
                )))
            }
        }
    }

    pub async fn fetch(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        entity: Entity,
        remote_id: String,
    ) -> wasmtime::Result<Result<Option<PulledRecord>, ConnectorError>> {
        let e = match self.since_1_3("fetch") {
            Ok(e) => e,
            Err(unsupported) => return Ok(Err(unsupported)),
        };
        Ok(e.fetch(instance, store)
            .call_async(store, (entity, remote_id))
            .await?
            .0
            .0)
    }

    pub async fn subscribe(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        url: String,
        entities: Vec<Entity>,
    ) -> wasmtime::Result<Result<Vec<Subscription>, ConnectorError>> {
        let e = match self.since_1_3("subscribe") {
            Ok(e) => e,
            Err(unsupported) => return Ok(Err(unsupported)),
        };
        Ok(e.subscribe(instance, store)
            .call_async(store, (url, entities))
            .await?
            .0
            .0)
    }

    pub async fn remove(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
        entity: Entity,
        remote_ids: Vec<String>,
        options: PushOptions,
    ) -> wasmtime::Result<PushResults<Removal>> {
        let e = match self.since_1_3("remove") {
            Ok(e) => e,
            Err(unsupported) => return Ok(Err(unsupported)),
        };
        Ok(e.remove(instance, store)
            .call_async(store, (entity, remote_ids, options))
            .await?
            .0
            .0)
    }
}
