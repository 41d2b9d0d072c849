//flowstone:pipeline name=two
package placement2
