package core

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFIFO pushes and pops across the ring's wrap, growth and shrinking:
// order holds, and a ring left mostly empty after a burst gives back room.
func TestFIFO(t *testing.T) {
	var f fifo[int]
	next, oldest := 0, 0
	for range 5000 {
		f.push(next)
		next++
	}
	grown := len(f.ring)
	for f.len() > 10 {
		require.Equal(t, oldest, *f.front())
		f.pop()
		oldest++
	}
	assert.Less(t, len(f.ring), grown, "the ring shrinks once the burst has left")
	for i := range f.len() {
		assert.Equal(t, oldest+i, *f.at(i))
	}
	for range 100 { // wrap around the smaller ring
		f.push(next)
		next++
		f.pop()
		oldest++
	}
	assert.Equal(t, oldest, *f.front())
	assert.Equal(t, next-1, *f.at(f.len() - 1))
}
