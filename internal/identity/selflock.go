package identity

import (
	"context"
	"strconv"

	"github.com/kabuto-sec/kabuto/internal/reason"
)

// selfLockKey is the catalogue entry of CheckSelfLock's refusal.
const selfLockKey = "account_locked.self"

// CheckSelfLock is the one self-lock check of every channel: the portal's
// actions and sign-ins and the brokerage's gate (API and integration)
// all ask it. It returns nil when account has no self-lock or its lock
// lets op through, and otherwise a refusal (account_locked, naming the
// lock's scope) that IsSelfLocked recognises.
func (s *Service) CheckSelfLock(ctx context.Context, account string, op Op) error {
	scope, _, err := s.SelfLock(ctx, account)
	if err != nil {
		return err
	}
	if Locked(scope, op) {
		return reason.E(selfLockKey, "scope", reason.W("scope", strconv.Itoa(scope)))
	}
	return nil
}

// IsSelfLocked reports whether err is CheckSelfLock's refusal.
func IsSelfLocked(err error) bool {
	e := reason.As(err)
	return e != nil && e.Key == selfLockKey
}
