package tracing

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
)

func msg(id string) *core.Message { return &core.Message{Event: core.Event{ID: id}} }

func TestBudgetCapsConcurrentTakes(t *testing.T) {
	b := newBudget(3)
	m := msg("e-1")
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if b.take(m) {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 3, granted.Load())
	assert.False(t, b.take(msg("e-1")), "counted by ID, not by pointer")
	assert.False(t, b.take(msg("")), "no ID, no link")
	assert.True(t, (*budget)(nil).take(m), "nil budget: unlimited")
}

func TestBudgetForgetsOldGenerations(t *testing.T) {
	b := newBudget(1)
	assert.True(t, b.take(msg("first")))
	for i := range genSize { // fills a generation: "first" moves to old
		b.take(msg(fmt.Sprint("a-", i)))
	}
	assert.False(t, b.take(msg("first")), "still remembered one generation later")
	for i := range 2 * genSize {
		b.take(msg(fmt.Sprint("b-", i)))
	}
	assert.True(t, b.take(msg("first")), "forgotten two generations later: memory stays bounded")
	g := b.gens.Load()
	n := 0
	g.cur.Range(func(any, any) bool { n++; return true })
	g.old.Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, n, 2*genSize)
}
