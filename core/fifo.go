package core

// fifo is a ring of values, oldest first, that grows as it fills and
// shrinks again once a burst has left, so a quiet broker does not keep a
// burst's worth of slots. The window and the in-memory history keep their
// bookkeeping in one.
type fifo[T any] struct {
	ring    []T
	head, n int
}

func (f *fifo[T]) len() int { return f.n }

// at returns the i-th oldest value, 0 <= i < len.
func (f *fifo[T]) at(i int) *T {
	i += f.head
	if i >= len(f.ring) {
		i -= len(f.ring)
	}
	return &f.ring[i]
}

// front returns the oldest value; the fifo must not be empty.
func (f *fifo[T]) front() *T { return &f.ring[f.head] }

func (f *fifo[T]) push(v T) {
	if f.n == len(f.ring) {
		f.resize(max(2*len(f.ring), 64))
	}
	f.n++
	*f.at(f.n - 1) = v
}

// pop drops the oldest value.
func (f *fifo[T]) pop() {
	var zero T
	f.ring[f.head] = zero // let go of what it referenced
	f.head++
	if f.head == len(f.ring) {
		f.head = 0
	}
	f.n--
	if f.n < len(f.ring)/4 && len(f.ring) > 1024 {
		f.resize(len(f.ring) / 2)
	}
}

func (f *fifo[T]) resize(size int) {
	ring := make([]T, size)
	for i := range f.n {
		ring[i] = *f.at(i)
	}
	f.ring, f.head = ring, 0
}
