//! Connectors built against `bss:integration@1.2.0` (the frozen copy in `wit/1.2.0`).
//!
//! 1.3 only added functions (`fetch`, `subscribe`, `remove`) and the types they use; every type a
//! 1.2 function takes or returns is the same in 1.3, field for field, and in 1.4 but for the
//! manifest (which gained `reach`). The component model checks types by structure, not by the
//! package that names them, so a 1.2 connector's exports are type-checked and called with the
//! newest bindings' types and 1.3's manifest (`runtime::exports`), and no set of generated types
//! of its own is needed. This module keeps 1.2 frozen.

#[cfg(test)]
mod tests {
    /// A released contract is frozen: connectors built against it are in the field.
    #[test]
    fn the_released_1_2_contract_is_unchanged() {
        assert_eq!(
            super::super::frozen_hash("1.2.0"),
            "a2e14c1c901caec9f8d80ec18be5dc687de933388e2916a39169ee0f73fe3ff7",
            "wit/1.2.0 was edited; restore it and change the newest contract in wit/ instead"
        );
    }
}
