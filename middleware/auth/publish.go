package auth

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
)

// CanPublish reports whether the identity may publish to target, from the
// publish claim of its token:
//
//   - target.Tenant must be the identity's tenant (ErrTenantNotAllowed):
//     set it from the identity, never from the request;
//   - every topic must match a topic pattern of the claim;
//   - users need GrantUsers, or GrantSelf when the only user is the
//     holder's own;
//   - a broadcast needs GrantBroadcast.
//
// Refusals wrap ErrPublishNotAllowed (core.ErrForbidden, 403). An identity
// not made by Authenticate or Verify, or whose token has expired since, is
// refused. An invalid topic name returns the error of core.ValidateTopic
// (400), as Publish would.
func CanPublish(id core.Identity, target core.Target) error {
	c, err := claimsFor(id, ErrPublishNotAllowed, time.Now())
	if err != nil {
		return err
	}
	if target.Tenant != id.Tenant {
		return fmt.Errorf("%w: target tenant %q", ErrTenantNotAllowed, clip(target.Tenant))
	}
	if target.Broadcast && !c.Publish.Broadcast {
		return fmt.Errorf("%w: broadcast needs %s", ErrPublishNotAllowed, GrantBroadcast)
	}
	for _, u := range target.Users {
		if c.Publish.Users || c.Publish.Self && u == c.User && u != uuid.Nil {
			continue
		}
		return fmt.Errorf("%w: pushing to user %s needs %s", ErrPublishNotAllowed, u, GrantUsers)
	}
	for _, topic := range target.Topics {
		if err := core.ValidateTopic(topic); err != nil {
			return err
		}
		if !c.Publish.Topics.Match(topic) {
			return fmt.Errorf("%w: topic %q", ErrPublishNotAllowed, topic)
		}
	}
	return nil
}
