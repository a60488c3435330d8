//go:build race

package e2e

// raceEnabled makes TestMain build the kbox binary with -race too, so a
// data race that only real clients provoke fails the test that saw it.
const raceEnabled = true
