//! `recommande send`: deposits a CSV file through a server's API, for agencies without an
//! integration.
