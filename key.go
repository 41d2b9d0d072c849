package flowstone

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key the engine accepts, in bytes: partition
// keys (dynamic set members included), run keys and the parts of a Ref.
const MaxKeyBytes = 256

// ErrInvalidKey is matched (errors.Is) by every error ValidateKey returns:
// a key that is not valid UTF-8, holds a control character (NUL, a line
// break, ...) or is longer than MaxKeyBytes. Partition keys that break
// these rules match ErrInvalidPartition too.
var ErrInvalidKey = errors.New("invalid key")

// ValidateKey checks a key that enters the engine by any door (the API,
// the command line, a sensor's RunRequest, a signed link, the web page):
// valid UTF-8, no control characters, at most MaxKeyBytes bytes. what
// names the key in the error ("partition key", "run key"). The empty key
// passes; whether it is allowed is the caller's rule. The rules hold on
// both databases, so a key that works on SQLite works on PostgreSQL.
func ValidateKey(what, key string) error {
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: %s %s: %d bytes; keys are at most %d bytes", ErrInvalidKey, what, QuoteKey(key), len(key), MaxKeyBytes)
	}
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w: %s %s: not valid UTF-8 at byte %d; keys are UTF-8 text", ErrInvalidKey, what, QuoteKey(key), i)
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %s: control character %U at byte %d; keys hold no control characters", ErrInvalidKey, what, QuoteKey(key), r, i)
		}
		i += size
	}
	return nil
}

// QuoteKey quotes a key for a message: Go-quoted, so control characters and
// invalid bytes show escaped, and cut after 64 bytes.
func QuoteKey(key string) string {
	const show = 64
	if len(key) <= show {
		return strconv.Quote(key)
	}
	return strconv.Quote(key[:show]) + fmt.Sprintf("... (%d bytes)", len(key))
}

// validPartitionKey is ValidateKey for a partition key, matching
// ErrInvalidPartition too.
func validPartitionKey(key Partition) error {
	if err := ValidateKey("partition key", string(key)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPartition, err)
	}
	return nil
}
