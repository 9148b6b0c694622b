//! The node config file, `config/config.yaml`.
//!
//! - [`Cidr`]: the address ranges of `trusted_addresses` and `deployment.admin.allow_admin`.

mod cidr;

pub use cidr::Cidr;
