//! Outbound webhooks: events become delivery rows ([`fanout`]) that a dispatcher signs per
//! Standard Webhooks ([`signature`]) and sends to destinations the [`destination`] policy
//! permits, retrying and dead-lettering ([`dispatcher`]). Bodies are built in [`payload`].

pub mod destination;
pub mod dispatcher;
pub mod fanout;
pub mod payload;
pub mod signature;
