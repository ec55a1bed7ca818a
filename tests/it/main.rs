//! The one integration test binary: Ferry as a user runs it, against real
//! git repositories, the simulator and real registries.

mod adopt;
mod approval;
mod boutique;
mod corpus;
mod deploy;
mod dropped_fields;
mod examples;
mod exit_codes;
mod external_offline;
mod first_run;
mod git_revisions;
mod github;
mod history;
mod images;
mod import;
mod inputs;
mod interrupted;
mod leaks;
mod least_privilege;
mod plan;
mod plan_equals_promote;
mod promote;
mod quickstart;
mod registry;
mod rollback;
mod safety;
mod server_fields;
mod sim;
mod status;
mod support;
mod tamper;
mod template_gvc;
mod valid;
