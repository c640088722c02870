//! kqlc: Microsoft Sentinel KQL detections to Sigma, Splunk SPL and Elastic ES|QL.
//!
//! See `ARCHITECTURE.md` for the stages and the modules that implement them.

pub mod syntax;
