package signature

import "errors"

// Sentinel errors. Verify and New wrap one of them with detail for logs; test
// with errors.Is. The detail never contains a secret or an expected
// signature, but it is still meant for logs only: answer a bare 401.
var (
	// ErrMissingSignature: the signature header is absent or empty, or it
	// holds no signature of a version this scheme accepts.
	ErrMissingSignature = errors.New("signature: missing signature")
	// ErrMissingHeader: a header the scheme requires besides the signature
	// (timestamp, delivery id, event type) is absent or empty.
	ErrMissingHeader = errors.New("signature: missing header")
	// ErrMalformedHeader: a signature or timestamp header does not have the
	// syntax the provider documents.
	ErrMalformedHeader = errors.New("signature: malformed header")
	// ErrSignatureMismatch: no signature in the delivery matches any of the
	// configured secrets.
	ErrSignatureMismatch = errors.New("signature: signature mismatch")
	// ErrTimestampOutOfTolerance: the signature matched but its signed
	// timestamp is too old (a replay) or too far in the future.
	ErrTimestampOutOfTolerance = errors.New("signature: timestamp out of tolerance")
	// ErrMalformedPayload: the signature matched but the body lacks the event
	// id or type the scheme reads from it.
	ErrMalformedPayload = errors.New("signature: malformed payload")
	// ErrInvalidConfig: New or Validate refused a configuration.
	ErrInvalidConfig = errors.New("signature: invalid config")
)
