// Package testrig gives the tests of routie's packages one copy of what they all stand up: a
// stand-in app on 127.0.0.1 ([StartApp]), routied's core on real sockets — proxy, switcher
// with fast settings and, optionally, the control server on a unix socket ([NewRig]) — a log
// buffer the server's goroutines and the test share ([LogBuffer]), and the small waits and
// addresses tests need ([DeadPort], [WaitFor], [Recv], [SocketPath]).
//
// Only _test.go files import it, so none of it is compiled into routied or routiectl
// (TestRoutiedDoesNotLinkTestrig checks). It does not import control, so that control's own
// tests, which are in package control, can use it too; a rig gets its control server from
// [Options.Control].
package testrig
