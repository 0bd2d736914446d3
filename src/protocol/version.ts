// The protocol's version: bumped on any change to a message's shape or meaning.
// 2: the challenge is signed by the coordinator over its DTLS certificate, and miners refuse one that is not.
export const PROTOCOL_VERSION = 2;
