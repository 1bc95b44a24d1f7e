//! A node's position in the tree, the one name the router shares with it.

/// A node's position in the tree. Only a `Tree` hands these out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub(super) usize);
