package flowstone

import (
	"errors"
	"fmt"
)

// ErrSkipped is matched (errors.Is) by every error that Skip returns.
var ErrSkipped = errors.New("flowstone: skipped")

// ErrPermanent is matched (errors.Is) by every error that Permanent returns.
var ErrPermanent = errors.New("flowstone: permanent failure")

type skipError struct{ reason string }

func (e *skipError) Error() string        { return "skipped: " + e.reason }
func (e *skipError) Is(target error) bool { return target == ErrSkipped }

// Skip returns an error that, returned from an asset function, records the
// materialization as skipped instead of failed. Dependents that require the
// asset are skipped too; Outcome dependents see Skipped.
func Skip(reason string) error { return &skipError{reason: reason} }

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent wraps err so that the asset fails at once, without the retries
// its retries= option would otherwise allow.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Permanentf is Permanent(fmt.Errorf(format, args...)).
func Permanentf(format string, args ...any) error {
	return Permanent(fmt.Errorf(format, args...))
}

// SkipReason returns the reason given to Skip, and whether err is a skip.
func SkipReason(err error) (string, bool) {
	var s *skipError
	if errors.As(err, &s) {
		return s.reason, true
	}
	return "", false
}
