//go:build race

package pool

// raceFactor scales the kernel's memory allowance in binaries built with
// the race detector, whose shadow memory counts against the limit: here it
// took about three bytes of address space beyond each byte of heap.
const raceFactor = 4
