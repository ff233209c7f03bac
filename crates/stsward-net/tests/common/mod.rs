pub mod dns_server;
