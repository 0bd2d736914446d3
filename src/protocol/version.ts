// The protocol's version: bumped on any change to a message's shape or meaning.
export const PROTOCOL_VERSION = 1;
