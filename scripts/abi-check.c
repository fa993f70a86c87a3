/* Prints the version and flags line that a module built with these definitions carries, in the
 * format of 'kamailio -V', so the build can compare them with the installed binary. */
#include <stdio.h>
#include "core/ver_defs.h"

int main(void)
{
	printf("version: %s\n", SER_FULL_VERSION);
	printf("flags: %s\n", SER_COMPILE_FLAGS);
	return 0;
}
