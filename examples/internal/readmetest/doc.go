// Package readmetest compiles every Go block of the repository's README.md
// (its tests are all there is). A block that is a program (it has a package
// clause) is built as written; a fragment is built inside func main of a
// generated program that imports the packages it names and declares ctx and
// broker (a *core.Broker), nothing else. go build and go vet see each
// program through an -overlay, so the tree is never written to.
package readmetest
