/* ringkeeper: the server executable (placeholder until the loops land). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ringkeeper: not built yet\n");
	return 1;
}
