//! End-to-end tests of cw-sandbox over real HTTP on loopback.

mod client;
mod fixtures;

mod auth;
mod callbacks;
mod conditions;
mod crud;
mod faults;
mod handle;
mod paging;
mod scale;
mod schema;
mod staff;
mod validation;
