/* office.h — presentations (PPTX, PPT, ODP, Keynote) to PDF with
 * LibreOffice, so the document pipeline can render their pages.
 *
 * LibreOffice is a separate program (`soffice --headless --convert-to
 * pdf`), run in a fresh private directory with its own user profile
 * (-env:UserInstallation), so conversions never share state or lock each
 * other out, in its own process group with a wall-clock limit: on timeout
 * the whole group is killed.  The directory and everything in it are
 * removed afterwards.  Without LibreOffice installed, office_available()
 * says so and conversions fail with OFFICE_MISSING.
 */
#ifndef ASSETD_OFFICE_H
#define ASSETD_OFFICE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    OFFICE_OK = 0,
    OFFICE_MISSING,     /* soffice is not installed */
    OFFICE_FAILED,      /* it ran and made no PDF (unreadable input) */
    OFFICE_TIMEOUT,
    OFFICE_IO_ERROR,
} office_status;

/* True when soffice is on the PATH. */
bool office_available(void);

/* What to install, for error messages. */
#define OFFICE_INSTALL_HINT "install LibreOffice Impress (apt-get install libreoffice-impress)"

/* Converts the file readable at in_fd (not closed) whose type is mime into
 * a PDF; on success *pdf_fd is an open descriptor of it (the file is
 * already unlinked; the caller closes it).  work_dir is where the private
 * directory is made (on the data volume: presentations can be large). */
office_status office_to_pdf(int in_fd, const char *mime, const char *work_dir, int timeout_s,
                            int *pdf_fd, char *err, size_t errcap);

#endif
