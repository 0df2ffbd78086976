/* Prints the OpenBLAS kernel this CPU selects (configure-time probe for the coretype tests). */
#include <stdio.h>
char *openblas_get_corename(void);
int main(void) {
    printf("%s", openblas_get_corename());
    return 0;
}
