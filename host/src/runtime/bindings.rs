//! Host-side bindings generated from `wit/` (`bss:integration@1.0.0`, world `plugin`).
//!
//! Every import is async so that a host call (an HTTP request) can be cancelled by the call
//! deadline; every export is async so that epoch interruption can yield to tokio.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use bss::integration::{http, log, settings, types};
pub use exports::bss::integration::connector;
