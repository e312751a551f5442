// Package top is the model and the renderer of `irqshift top`: a frame is
// built from two samples of the interrupt counts and the classified state
// (Build), and drawn as plain text for a width, a height and a sort key
// (Render) or written as one line of JSON (WriteJSON). Everything here is
// pure: no file is read, no terminal touched.
//
// One renderer makes the frames of `top --once`, of the golden tests and of
// the live view, so what the tests check is what the operator sees. The
// live view (top.go in package main) only adds raw mode, the terminal's
// size and a few ANSI escape sequences around these frames; that is why it
// uses golang.org/x/term and no full-screen framework, which would bring
// dependencies and a second way of drawing that no test could see.
//
// The counts come from package ops (ops.Top): /proc/interrupts, or the
// eBPF counter with --ebpf.
package top
